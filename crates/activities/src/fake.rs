//! In-memory ports for tests: an ECS with services and tasks, alarms whose
//! state a test sets, a dead-letter queue that keeps what it was sent.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;

use async_trait::async_trait;

use crate::ports::{
    AlarmDefinition, Alarms, AwsError, DeadLetters, Ecs, Executions, Functions, Invocation,
    MetricQuery, Metrics, Parameters, PutParameter, Service, Task,
};

#[derive(Default)]
struct EcsState {
    /// (cluster, service) -> (desired, running task arns)
    services: BTreeMap<(String, String), (i32, Vec<String>)>,
    stopped: Vec<String>,
    next_task: usize,
    fail_next: Option<AwsError>,
    /// "cluster" or "cluster/service" -> tags
    tags: BTreeMap<String, BTreeMap<String, String>>,
}

fn tag_key(cluster: &str, service: Option<&str>) -> String {
    match service {
        Some(s) => format!("{cluster}/{s}"),
        None => cluster.to_string(),
    }
}

#[derive(Default)]
pub struct FakeEcs(Mutex<EcsState>);

impl FakeEcs {
    pub fn with_service(cluster: &str, service: &str, tasks: usize) -> Self {
        let ecs = FakeEcs::default();
        ecs.set_desired(cluster, service, tasks as i32);
        ecs.set_running(cluster, service, tasks);
        ecs
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, EcsState> {
        self.0.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub fn set_desired(&self, cluster: &str, service: &str, desired: i32) {
        let mut s = self.lock();
        s.services
            .entry((cluster.into(), service.into()))
            .or_default()
            .0 = desired;
    }

    pub fn set_running(&self, cluster: &str, service: &str, running: usize) {
        let mut s = self.lock();
        let first = s.next_task;
        s.next_task += running;
        let tasks = (first..first + running)
            .map(|i| format!("arn:aws:ecs:task/{cluster}/{i}"))
            .collect();
        s.services
            .entry((cluster.into(), service.into()))
            .or_default()
            .1 = tasks;
    }

    /// Tag a service (or, without one, the cluster).
    pub fn tag(&self, cluster: &str, service: Option<&str>, key: &str, value: &str) {
        self.lock()
            .tags
            .entry(tag_key(cluster, service))
            .or_default()
            .insert(key.into(), value.into());
    }

    pub fn desired(&self, cluster: &str, service: &str) -> i32 {
        self.lock()
            .services
            .get(&(cluster.into(), service.into()))
            .map_or(-1, |s| s.0)
    }

    pub fn stopped(&self) -> Vec<String> {
        self.lock().stopped.clone()
    }

    /// The next call fails with this error.
    pub fn fail_next(&self, err: AwsError) {
        self.lock().fail_next = Some(err);
    }

    fn check(&self) -> Result<(), AwsError> {
        match self.lock().fail_next.take() {
            Some(e) => Err(e),
            None => Ok(()),
        }
    }
}

#[async_trait]
impl Ecs for FakeEcs {
    async fn describe_service(&self, cluster: &str, service: &str) -> Result<Service, AwsError> {
        self.check()?;
        let s = self.lock();
        let (desired, running) = s
            .services
            .get(&(cluster.into(), service.into()))
            .ok_or_else(|| {
                AwsError::NotFound(format!(
                    "service '{service}' not found in cluster '{cluster}'"
                ))
            })?;
        Ok(Service {
            name: service.into(),
            status: "ACTIVE".into(),
            desired_count: *desired,
            running_count: running.len() as i32,
            pending_count: 0,
        })
    }

    async fn running_tasks(
        &self,
        cluster: &str,
        service: Option<&str>,
    ) -> Result<Vec<Task>, AwsError> {
        self.check()?;
        let s = self.lock();
        Ok(s.services
            .iter()
            .filter(|((c, svc), _)| c == cluster && service.is_none_or(|want| want == svc))
            .flat_map(|(_, (_, tasks))| tasks.iter())
            .map(|arn| Task {
                arn: arn.clone(),
                last_status: "RUNNING".into(),
            })
            .collect())
    }

    async fn stop_task(
        &self,
        _cluster: &str,
        task_arn: &str,
        _reason: &str,
    ) -> Result<(), AwsError> {
        self.check()?;
        let mut s = self.lock();
        for (_, tasks) in s.services.values_mut() {
            tasks.retain(|t| t != task_arn);
        }
        s.stopped.push(task_arn.into());
        Ok(())
    }

    async fn update_desired_count(
        &self,
        cluster: &str,
        service: &str,
        desired: i32,
    ) -> Result<(), AwsError> {
        self.check()?;
        let mut s = self.lock();
        let entry = s
            .services
            .get_mut(&(cluster.into(), service.into()))
            .ok_or_else(|| {
                AwsError::NotFound(format!(
                    "service '{service}' not found in cluster '{cluster}'"
                ))
            })?;
        entry.0 = desired;
        Ok(())
    }

    async fn tags(
        &self,
        cluster: &str,
        service: Option<&str>,
    ) -> Result<BTreeMap<String, String>, AwsError> {
        self.check()?;
        Ok(self
            .lock()
            .tags
            .get(&tag_key(cluster, service))
            .cloned()
            .unwrap_or_default())
    }
}

#[derive(Default)]
pub struct FakeAlarms {
    states: Mutex<BTreeMap<String, String>>,
    calls: AtomicUsize,
    /// (after this many reads, alarm, state)
    later: Mutex<Option<(usize, String, String)>>,
    definitions: Mutex<Vec<AlarmDefinition>>,
}

impl FakeAlarms {
    /// Set `name` to `state` once the alarms have been read `reads` times.
    pub fn set_after_reads(&self, reads: usize, name: &str, state: &str) {
        *self.later.lock().unwrap_or_else(|e| e.into_inner()) =
            Some((reads, name.into(), state.into()));
    }

    pub fn set(&self, name: &str, state: &str) {
        self.states
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(name.into(), state.into());
    }

    pub fn calls(&self) -> usize {
        self.calls.load(Ordering::SeqCst)
    }

    /// Describe a metric alarm (its state is the one [`Self::set`] gave).
    pub fn define(&self, alarm: AlarmDefinition) {
        self.definitions
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push(alarm);
    }
}

#[async_trait]
impl Alarms for FakeAlarms {
    async fn states(&self, names: &[String]) -> Result<BTreeMap<String, String>, AwsError> {
        let reads = self.calls.fetch_add(1, Ordering::SeqCst);
        let due = {
            let mut later = self.later.lock().unwrap_or_else(|e| e.into_inner());
            match later.take() {
                Some((after, name, state)) if reads >= after => Some((name, state)),
                other => {
                    *later = other;
                    None
                }
            }
        };
        if let Some((name, state)) = due {
            self.set(&name, &state);
        }
        let states = self.states.lock().unwrap_or_else(|e| e.into_inner());
        Ok(names
            .iter()
            .filter_map(|n| states.get(n).map(|s| (n.clone(), s.clone())))
            .collect())
    }

    async fn definitions(&self, names: &[String]) -> Result<Vec<AlarmDefinition>, AwsError> {
        let states = self.states.lock().unwrap_or_else(|e| e.into_inner());
        Ok(self
            .definitions
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .iter()
            .filter(|d| names.contains(&d.name))
            .map(|d| AlarmDefinition {
                state: states
                    .get(&d.name)
                    .cloned()
                    .unwrap_or_else(|| d.state.clone()),
                ..d.clone()
            })
            .collect())
    }
}

/// Metrics that answer with the values a test gives, and keep the queries.
#[derive(Default)]
pub struct FakeMetrics {
    pub values: Mutex<Vec<f64>>,
    pub queries: Mutex<Vec<MetricQuery>>,
}

#[async_trait]
impl Metrics for FakeMetrics {
    async fn statistics(&self, query: &MetricQuery) -> Result<Vec<f64>, AwsError> {
        self.queries
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push(query.clone());
        Ok(self
            .values
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone())
    }

    /// The values, one period apart from the query's start.
    async fn series(
        &self,
        query: &MetricQuery,
    ) -> Result<Vec<(time::OffsetDateTime, f64)>, AwsError> {
        let values = self.statistics(query).await?;
        let step = time::Duration::seconds(i64::from(query.period_seconds));
        Ok((0..).map(|i| query.start + step * i).zip(values).collect())
    }
}

#[derive(Default)]
pub struct FakeDeadLetters(Mutex<Vec<(String, String)>>);

impl FakeDeadLetters {
    pub fn sent(&self) -> Vec<(String, String)> {
        self.0.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }
}

#[async_trait]
impl DeadLetters for FakeDeadLetters {
    async fn send(&self, queue_url: &str, body: &str) -> Result<(), AwsError> {
        self.0
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push((queue_url.into(), body.into()));
        Ok(())
    }
}

#[derive(Default)]
pub struct FakeParameters(Mutex<BTreeMap<String, String>>);

impl FakeParameters {
    pub fn value(&self, name: &str) -> Option<String> {
        self.0
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(name)
            .cloned()
    }

    pub fn set(&self, name: &str, value: &str) {
        self.0
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(name.into(), value.into());
    }
}

#[async_trait]
impl Parameters for FakeParameters {
    async fn get(&self, name: &str) -> Result<Option<String>, AwsError> {
        Ok(self.value(name))
    }

    async fn put(&self, put: &PutParameter) -> Result<(), AwsError> {
        let mut m = self.0.lock().unwrap_or_else(|e| e.into_inner());
        if m.contains_key(&put.name) && !put.overwrite {
            return Err(AwsError::Other(format!(
                "ParameterAlreadyExists: {}",
                put.name
            )));
        }
        m.insert(put.name.clone(), put.value.clone());
        Ok(())
    }

    async fn delete(&self, name: &str) -> Result<bool, AwsError> {
        Ok(self
            .0
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(name)
            .is_some())
    }

    async fn create(&self, name: &str, value: &str) -> Result<bool, AwsError> {
        let mut m = self.0.lock().unwrap_or_else(|e| e.into_inner());
        if m.contains_key(name) {
            return Ok(false);
        }
        m.insert(name.into(), value.into());
        Ok(true)
    }

    async fn list(&self, path: &str) -> Result<Vec<(String, String)>, AwsError> {
        let prefix = format!("{}/", path.trim_end_matches('/'));
        Ok(self
            .0
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .iter()
            .filter(|(k, _)| k.starts_with(&prefix))
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect())
    }
}

type Responder = Box<dyn Fn(&str, &[u8]) -> Result<Invocation, AwsError> + Send + Sync>;

/// Functions that answer with what the test says (by default `{}`),
/// after `latency` (on tokio's clock).
pub struct FakeFunctions {
    respond: Responder,
    calls: AtomicUsize,
    pub latency: std::time::Duration,
    tags: Mutex<BTreeMap<String, BTreeMap<String, String>>>,
    setups: Mutex<BTreeMap<String, experiment::faults::FunctionSetup>>,
}

impl Default for FakeFunctions {
    fn default() -> Self {
        FakeFunctions::answering(|_, _| {
            Ok(Invocation {
                status_code: 200,
                function_error: None,
                payload: b"{}".to_vec(),
            })
        })
    }
}

impl FakeFunctions {
    pub fn answering(
        f: impl Fn(&str, &[u8]) -> Result<Invocation, AwsError> + Send + Sync + 'static,
    ) -> Self {
        FakeFunctions {
            respond: Box::new(f),
            calls: AtomicUsize::new(0),
            latency: std::time::Duration::ZERO,
            tags: Mutex::default(),
            setups: Mutex::default(),
        }
    }

    /// How `function_name` is set up (its tags stay those of [`tag`]);
    /// without it, set up with nothing (no runtime, layer or variable).
    ///
    /// [`tag`]: FakeFunctions::tag
    pub fn set_up(&self, function_name: &str, setup: experiment::faults::FunctionSetup) {
        self.setups
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(function_name.into(), setup);
    }

    pub fn tag(&self, function_name: &str, key: &str, value: &str) {
        self.tags
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .entry(function_name.into())
            .or_default()
            .insert(key.into(), value.into());
    }

    pub fn calls(&self) -> usize {
        self.calls.load(Ordering::SeqCst)
    }
}

#[async_trait]
impl Functions for FakeFunctions {
    async fn invoke(
        &self,
        function_name: &str,
        payload: &[u8],
        _invocation_type: &str,
        _qualifier: Option<&str>,
    ) -> Result<Invocation, AwsError> {
        self.calls.fetch_add(1, Ordering::SeqCst);
        if !self.latency.is_zero() {
            tokio::time::sleep(self.latency).await;
        }
        (self.respond)(function_name, payload)
    }

    async fn tags(&self, function_name: &str) -> Result<BTreeMap<String, String>, AwsError> {
        Ok(self
            .tags
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(function_name)
            .cloned()
            .unwrap_or_default())
    }

    async fn setup(
        &self,
        function_name: &str,
    ) -> Result<experiment::faults::FunctionSetup, AwsError> {
        let tags = self.tags(function_name).await?;
        let setup = self
            .setups
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(function_name)
            .cloned()
            .unwrap_or_default();
        Ok(experiment::faults::FunctionSetup { tags, ..setup })
    }
}

#[derive(Default)]
struct ExecutionsState {
    status: BTreeMap<String, String>,
    output: BTreeMap<String, serde_json::Value>,
    last: BTreeMap<String, serde_json::Value>,
    /// (state machine, name, input) of every start.
    started: Vec<(String, String, String)>,
    stopped: Vec<String>,
}

/// Step Functions executions whose status and output a test sets; started
/// executions are RUNNING until it says otherwise.
#[derive(Default)]
pub struct FakeExecutions(Mutex<ExecutionsState>);

impl FakeExecutions {
    fn state(&self) -> std::sync::MutexGuard<'_, ExecutionsState> {
        self.0.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub fn set_status(&self, execution: &str, status: &str) {
        self.state().status.insert(execution.into(), status.into());
    }

    /// The execution succeeded with this output.
    pub fn succeed(&self, execution: &str, output: serde_json::Value) {
        self.set_status(execution, "SUCCEEDED");
        self.state().output.insert(execution.into(), output);
    }

    pub fn set_last_state(&self, execution: &str, state: serde_json::Value) {
        self.state().last.insert(execution.into(), state);
    }

    pub fn started(&self) -> Vec<(String, String, String)> {
        self.state().started.clone()
    }

    pub fn stopped(&self) -> Vec<String> {
        self.state().stopped.clone()
    }
}

#[async_trait]
impl Executions for FakeExecutions {
    async fn start(&self, state_machine: &str, name: &str, input: &str) -> Result<(), AwsError> {
        let arn = format!(
            "{}:{name}",
            state_machine.replacen(":stateMachine:", ":execution:", 1)
        );
        let mut s = self.state();
        s.started
            .push((state_machine.into(), name.into(), input.into()));
        s.status.entry(arn).or_insert_with(|| "RUNNING".into());
        Ok(())
    }

    async fn stop(&self, execution: &str, _: &str) -> Result<(), AwsError> {
        let mut s = self.state();
        s.stopped.push(execution.into());
        if let Some(status) = s.status.get_mut(execution) {
            if status == "RUNNING" {
                *status = "ABORTED".into();
            }
        }
        Ok(())
    }

    async fn status(&self, execution: &str) -> Result<Option<String>, AwsError> {
        Ok(self.state().status.get(execution).cloned())
    }

    async fn output(&self, execution: &str) -> Result<Option<serde_json::Value>, AwsError> {
        Ok(self.state().output.get(execution).cloned())
    }

    async fn last_state(&self, execution: &str) -> Result<Option<serde_json::Value>, AwsError> {
        Ok(self.state().last.get(execution).cloned())
    }
}
