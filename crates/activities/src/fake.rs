//! In-memory ports for tests: an ECS with services and tasks, alarms whose
//! state a test sets, a dead-letter queue that keeps what it was sent.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;

use async_trait::async_trait;

use crate::awslambda::{ConfigUpdate, EventSourceMapping, FunctionConfig};
use crate::ecs::{Cluster, ContainerInstance, Deployment, Placement, TaskInfo};
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
    /// (cluster, service) -> (maximumPercent, minimumHealthyPercent)
    deployment: BTreeMap<(String, String), (i32, i32)>,
    placement: BTreeMap<(String, String), Vec<Placement>>,
    /// (cluster, service) -> deployments under way
    deployments: BTreeMap<(String, String), usize>,
    /// resource ARN -> tags
    arn_tags: BTreeMap<String, BTreeMap<String, String>>,
    /// cluster -> (container instance ARN, status)
    instances: BTreeMap<String, Vec<(String, String)>>,
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

    /// Tag a resource by ARN (what ListTagsForResource answers).
    pub fn tag_arn(&self, arn: &str, key: &str, value: &str) {
        self.lock()
            .arn_tags
            .entry(arn.into())
            .or_default()
            .insert(key.into(), value.into());
    }

    pub fn arn_tags(&self, arn: &str) -> BTreeMap<String, String> {
        self.lock().arn_tags.get(arn).cloned().unwrap_or_default()
    }

    pub fn set_deployments(&self, cluster: &str, service: &str, n: usize) {
        self.lock()
            .deployments
            .insert((cluster.into(), service.into()), n);
    }

    /// The container instances of a cluster, all ACTIVE: `ci-0`, `ci-1`, ...
    pub fn with_instances(self, cluster: &str, n: usize) -> Self {
        self.lock().instances.insert(
            cluster.into(),
            (0..n)
                .map(|i| {
                    (
                        format!("arn:aws:ecs:container-instance/{cluster}/ci-{i}"),
                        "ACTIVE".into(),
                    )
                })
                .collect(),
        );
        self
    }

    pub fn instance_states(&self, cluster: &str) -> Vec<String> {
        self.lock()
            .instances
            .get(cluster)
            .map(|v| v.iter().map(|(_, s)| s.clone()).collect())
            .unwrap_or_default()
    }

    pub fn deployment_configuration(&self, cluster: &str, service: &str) -> Option<(i32, i32)> {
        self.lock()
            .deployment
            .get(&(cluster.into(), service.into()))
            .copied()
    }

    pub fn placement(&self, cluster: &str, service: &str) -> Vec<Placement> {
        self.lock()
            .placement
            .get(&(cluster.into(), service.into()))
            .cloned()
            .unwrap_or_default()
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
        let key = (cluster.to_string(), service.to_string());
        Ok(Service {
            name: service.into(),
            arn: format!("arn:aws:ecs:us-east-1:123456789012:service/{cluster}/{service}"),
            status: "ACTIVE".into(),
            desired_count: *desired,
            running_count: running.len() as i32,
            pending_count: 0,
            deployments: vec![Deployment::default(); s.deployments.get(&key).copied().unwrap_or(1)],
            deployment_configuration: s.deployment.get(&key).copied(),
            placement_strategy: s.placement.get(&key).cloned().unwrap_or_default(),
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

    async fn task_tags(
        &self,
        cluster: &str,
        task: &str,
    ) -> Result<BTreeMap<String, String>, AwsError> {
        self.check()?;
        let s = self.lock();
        let service = s
            .services
            .iter()
            .find(|((c, _), (_, tasks))| {
                c == cluster
                    && tasks
                        .iter()
                        .any(|t| t == task || t.ends_with(&format!("/{task}")))
            })
            .map(|((_, svc), _)| svc.clone());
        // Tasks carry their service's tags (propagateTags: SERVICE).
        Ok(service
            .and_then(|svc| s.tags.get(&tag_key(cluster, Some(&svc))).cloned())
            .unwrap_or_default())
    }

    async fn describe_cluster(&self, cluster: &str) -> Result<Cluster, AwsError> {
        self.check()?;
        let s = self.lock();
        let services: Vec<_> = s
            .services
            .iter()
            .filter(|((c, _), _)| c == cluster)
            .collect();
        if services.is_empty() && !s.instances.contains_key(cluster) {
            return Err(AwsError::NotFound(format!("cluster '{cluster}' not found")));
        }
        Ok(Cluster {
            name: cluster.into(),
            arn: format!("arn:aws:ecs:us-east-1:123456789012:cluster/{cluster}"),
            status: "ACTIVE".into(),
            running_tasks: services.iter().map(|(_, (_, t))| t.len() as i32).sum(),
            pending_tasks: 0,
            active_services: services.len() as i32,
            container_instances: s.instances.get(cluster).map_or(0, |v| v.len() as i32),
        })
    }

    async fn tasks(&self, cluster: &str) -> Result<Vec<TaskInfo>, AwsError> {
        self.check()?;
        let s = self.lock();
        Ok(s.services
            .iter()
            .filter(|((c, _), _)| c == cluster)
            .flat_map(|((_, svc), (_, tasks))| {
                tasks.iter().map(move |arn| TaskInfo {
                    arn: arn.clone(),
                    last_status: "RUNNING".into(),
                    desired_status: "RUNNING".into(),
                    group: Some(format!("service:{svc}")),
                    health_status: Some("HEALTHY".into()),
                    task_definition: None,
                })
            })
            .collect())
    }

    async fn update_deployment_configuration(
        &self,
        cluster: &str,
        service: &str,
        maximum_percent: i32,
        minimum_healthy_percent: i32,
    ) -> Result<(), AwsError> {
        self.check()?;
        self.lock().deployment.insert(
            (cluster.into(), service.into()),
            (maximum_percent, minimum_healthy_percent),
        );
        Ok(())
    }

    async fn update_placement_strategy(
        &self,
        cluster: &str,
        service: &str,
        strategy: &[Placement],
    ) -> Result<(), AwsError> {
        self.check()?;
        self.lock()
            .placement
            .insert((cluster.into(), service.into()), strategy.to_vec());
        Ok(())
    }

    async fn resource_tags(&self, arn: &str) -> Result<BTreeMap<String, String>, AwsError> {
        self.check()?;
        Ok(self.arn_tags(arn))
    }

    async fn tag_resource(
        &self,
        arn: &str,
        tags: &BTreeMap<String, String>,
    ) -> Result<(), AwsError> {
        self.check()?;
        self.lock()
            .arn_tags
            .entry(arn.into())
            .or_default()
            .extend(tags.clone());
        Ok(())
    }

    async fn untag_resource(&self, arn: &str, keys: &[String]) -> Result<(), AwsError> {
        self.check()?;
        if let Some(tags) = self.lock().arn_tags.get_mut(arn) {
            tags.retain(|k, _| !keys.contains(k));
        }
        Ok(())
    }

    async fn container_instances(&self, cluster: &str) -> Result<Vec<ContainerInstance>, AwsError> {
        self.check()?;
        Ok(self
            .lock()
            .instances
            .get(cluster)
            .into_iter()
            .flatten()
            .map(|(arn, status)| ContainerInstance {
                arn: arn.clone(),
                status: status.clone(),
            })
            .collect())
    }

    async fn set_container_instances_state(
        &self,
        cluster: &str,
        instances: &[String],
        status: &str,
    ) -> Result<(), AwsError> {
        self.check()?;
        for (arn, s) in self.lock().instances.entry(cluster.into()).or_default() {
            if instances.contains(arn) {
                *s = status.into();
            }
        }
        Ok(())
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

/// What a fake function is set to.
#[derive(Debug, Clone)]
struct FunctionSettings {
    timeout: i32,
    memory_size: i32,
    reserved: Option<i32>,
}

/// Functions that answer with what the test says (by default `{}`),
/// after `latency` (on tokio's clock); their settings and event source
/// mappings as a test makes them.
pub struct FakeFunctions {
    respond: Responder,
    calls: AtomicUsize,
    pub latency: std::time::Duration,
    tags: Mutex<BTreeMap<String, BTreeMap<String, String>>>,
    settings: Mutex<BTreeMap<String, FunctionSettings>>,
    mappings: Mutex<BTreeMap<String, EventSourceMapping>>,
    setups: Mutex<BTreeMap<String, crate::faults::FunctionSetup>>,
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
            settings: Mutex::default(),
            mappings: Mutex::default(),
        }
    }

    /// A function with this timeout and memory, nothing reserved.
    pub fn with_function(self, name: &str, timeout: i32, memory_size: i32) -> Self {
        self.settings
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(
                name.into(),
                FunctionSettings {
                    timeout,
                    memory_size,
                    reserved: None,
                },
            );
        self
    }

    /// An event source mapping feeding `function`, enabled or not.
    pub fn with_mapping(self, uuid: &str, function: &str, enabled: bool) -> Self {
        self.mappings
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(
                uuid.into(),
                EventSourceMapping {
                    uuid: uuid.into(),
                    state: if enabled { "Enabled" } else { "Disabled" }.into(),
                    function_arn: format!(
                        "arn:aws:lambda:us-east-1:123456789012:function:{function}"
                    ),
                    event_source_arn: "arn:aws:sqs:us-east-1:123456789012:queue".into(),
                    batch_size: Some(10),
                },
            );
        self
    }

    /// (timeout, memory size, reserved concurrency) of a function.
    pub fn settings(&self, name: &str) -> Option<(i32, i32, Option<i32>)> {
        self.settings
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(name)
            .map(|s| (s.timeout, s.memory_size, s.reserved))
    }

    pub fn mapping_state(&self, uuid: &str) -> Option<String> {
        self.mappings
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(uuid)
            .map(|m| m.state.clone())
    }

    fn setting<T>(
        &self,
        name: &str,
        f: impl FnOnce(&mut FunctionSettings) -> T,
    ) -> Result<T, AwsError> {
        let mut settings = self.settings.lock().unwrap_or_else(|e| e.into_inner());
        let function = name.rsplit(':').next().unwrap_or(name);
        settings
            .get_mut(function)
            .map(f)
            .ok_or_else(|| AwsError::NotFound(format!("Lambda function '{name}' not found")))
    }

    fn config(name: &str, s: &FunctionSettings) -> FunctionConfig {
        FunctionConfig {
            name: name.into(),
            arn: format!("arn:aws:lambda:us-east-1:123456789012:function:{name}"),
            timeout: s.timeout,
            memory_size: s.memory_size,
            last_update_status: Some("Successful".into()),
        }
    }

    /// How `function_name` is set up (its tags stay those of [`tag`]);
    /// without it, set up with nothing (no runtime, layer or variable).
    ///
    /// [`tag`]: FakeFunctions::tag
    pub fn set_up(&self, function_name: &str, setup: crate::faults::FunctionSetup) {
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
        let name = function_name.rsplit(':').next().unwrap_or(function_name);
        Ok(self
            .tags
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(name)
            .cloned()
            .unwrap_or_default())
    }

    async fn configuration(
        &self,
        function_name: &str,
        _qualifier: Option<&str>,
    ) -> Result<FunctionConfig, AwsError> {
        self.setting(function_name, |s| Self::config(function_name, s))
    }

    async fn update_configuration(
        &self,
        function_name: &str,
        update: &ConfigUpdate,
    ) -> Result<FunctionConfig, AwsError> {
        self.setting(function_name, |s| {
            if let Some(t) = update.timeout {
                s.timeout = t;
            }
            if let Some(m) = update.memory_size {
                s.memory_size = m;
            }
            Self::config(function_name, s)
        })
    }

    async fn concurrency(&self, function_name: &str) -> Result<Option<i32>, AwsError> {
        self.setting(function_name, |s| s.reserved)
    }

    async fn put_concurrency(&self, function_name: &str, reserved: i32) -> Result<(), AwsError> {
        self.setting(function_name, |s| s.reserved = Some(reserved))
    }

    async fn delete_concurrency(&self, function_name: &str) -> Result<(), AwsError> {
        self.setting(function_name, |s| s.reserved = None)
    }

    async fn event_source_mappings(
        &self,
        function_name: Option<&str>,
        source_arn: Option<&str>,
    ) -> Result<Vec<EventSourceMapping>, AwsError> {
        Ok(self
            .mappings
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .values()
            .filter(|m| {
                function_name.is_none_or(|f| m.function_arn.ends_with(&format!(":{f}")))
                    && source_arn.is_none_or(|s| m.event_source_arn == s)
            })
            .cloned()
            .collect())
    }

    async fn event_source_mapping(&self, uuid: &str) -> Result<EventSourceMapping, AwsError> {
        self.mappings
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(uuid)
            .cloned()
            .ok_or_else(|| AwsError::NotFound(format!("no event source mapping '{uuid}'")))
    }

    async fn enable_event_source_mapping(
        &self,
        uuid: &str,
        enabled: bool,
    ) -> Result<EventSourceMapping, AwsError> {
        let mut mappings = self.mappings.lock().unwrap_or_else(|e| e.into_inner());
        let m = mappings
            .get_mut(uuid)
            .ok_or_else(|| AwsError::NotFound(format!("no event source mapping '{uuid}'")))?;
        m.state = if enabled { "Enabled" } else { "Disabled" }.into();
        Ok(m.clone())
    }

    async fn setup(&self, function_name: &str) -> Result<crate::faults::FunctionSetup, AwsError> {
        let tags = self.tags(function_name).await?;
        let setup = self
            .setups
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(function_name)
            .cloned()
            .unwrap_or_default();
        Ok(crate::faults::FunctionSetup { tags, ..setup })
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

/// A fake target: (id, port, health state).
type FakeTarget = (String, Option<i32>, String);

#[derive(Default)]
struct LoadBalancingState {
    /// name -> (arn, targets)
    groups: BTreeMap<String, (String, Vec<FakeTarget>)>,
    /// name -> (arn, kind, security groups, subnets, access log (on, bucket))
    balancers: BTreeMap<String, crate::elbv2::LoadBalancer>,
    access_logs: BTreeMap<String, (bool, Option<String>)>,
    tags: BTreeMap<String, BTreeMap<String, String>>,
}

/// Target groups and load balancers a test makes; every target healthy
/// until a test says otherwise.
#[derive(Default)]
pub struct FakeLoadBalancing(Mutex<LoadBalancingState>);

impl FakeLoadBalancing {
    fn state(&self) -> std::sync::MutexGuard<'_, LoadBalancingState> {
        self.0.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// A target group of `n` healthy instance targets on port 80.
    pub fn with_target_group(self, name: &str, n: usize) -> Self {
        let arn =
            format!("arn:aws:elasticloadbalancing:us-east-1:123456789012:targetgroup/{name}/0123");
        let targets = (0..n)
            .map(|i| (format!("i-{i:017}"), Some(80), "healthy".to_string()))
            .collect();
        self.state().groups.insert(name.into(), (arn, targets));
        self
    }

    /// A load balancer of this kind, in security group `sg-1`, subnets
    /// `subnet-1` and `subnet-2`, access logs off.
    pub fn with_load_balancer(self, name: &str, kind: &str) -> Self {
        let arn = format!(
            "arn:aws:elasticloadbalancing:us-east-1:123456789012:loadbalancer/app/{name}/0123"
        );
        self.state().balancers.insert(
            name.into(),
            crate::elbv2::LoadBalancer {
                name: name.into(),
                arn,
                kind: kind.into(),
                security_groups: vec!["sg-1".into()],
                subnets: vec!["subnet-1".into(), "subnet-2".into()],
            },
        );
        self
    }

    pub fn tag(&self, arn: &str, key: &str, value: &str) {
        self.state()
            .tags
            .entry(arn.into())
            .or_default()
            .insert(key.into(), value.into());
    }

    pub fn arn_of(&self, name: &str) -> String {
        let s = self.state();
        s.balancers
            .get(name)
            .map(|l| l.arn.clone())
            .or_else(|| s.groups.get(name).map(|g| g.0.clone()))
            .unwrap_or_default()
    }

    /// The ids of a group's targets.
    pub fn registered(&self, group: &str) -> Vec<String> {
        self.state()
            .groups
            .get(group)
            .map(|g| g.1.iter().map(|t| t.0.clone()).collect())
            .unwrap_or_default()
    }

    pub fn set_state(&self, group: &str, target: usize, state: &str) {
        if let Some(g) = self.state().groups.get_mut(group) {
            if let Some(t) = g.1.get_mut(target) {
                t.2 = state.into();
            }
        }
    }

    /// (security groups, subnets) of a load balancer.
    pub fn network(&self, name: &str) -> (Vec<String>, Vec<String>) {
        self.state()
            .balancers
            .get(name)
            .map(|l| (l.security_groups.clone(), l.subnets.clone()))
            .unwrap_or_default()
    }

    fn group_of_arn<'a>(
        s: &'a mut LoadBalancingState,
        arn: &str,
    ) -> Result<&'a mut Vec<FakeTarget>, AwsError> {
        s.groups
            .values_mut()
            .find(|g| g.0 == arn)
            .map(|g| &mut g.1)
            .ok_or_else(|| AwsError::NotFound(format!("no target group '{arn}'")))
    }

    fn balancer_of_arn<'a>(
        s: &'a mut LoadBalancingState,
        arn: &str,
    ) -> Result<&'a mut crate::elbv2::LoadBalancer, AwsError> {
        s.balancers
            .values_mut()
            .find(|l| l.arn == arn)
            .ok_or_else(|| AwsError::NotFound(format!("no load balancer '{arn}'")))
    }
}

#[async_trait]
impl crate::elbv2::LoadBalancing for FakeLoadBalancing {
    async fn target_groups(
        &self,
        names: &[String],
    ) -> Result<Vec<crate::elbv2::TargetGroup>, AwsError> {
        let s = self.state();
        names
            .iter()
            .map(|n| {
                s.groups
                    .get(n)
                    .map(|g| crate::elbv2::TargetGroup {
                        name: n.clone(),
                        arn: g.0.clone(),
                    })
                    .ok_or_else(|| AwsError::NotFound(format!("no target group '{n}'")))
            })
            .collect()
    }

    async fn target_health(
        &self,
        target_group_arn: &str,
    ) -> Result<Vec<crate::elbv2::TargetHealth>, AwsError> {
        let mut s = self.state();
        Ok(Self::group_of_arn(&mut s, target_group_arn)?
            .iter()
            .map(|(id, port, state)| crate::elbv2::TargetHealth {
                id: id.clone(),
                port: *port,
                state: state.clone(),
            })
            .collect())
    }

    async fn deregister_targets(
        &self,
        target_group_arn: &str,
        targets: &[(String, Option<i32>)],
    ) -> Result<(), AwsError> {
        let mut s = self.state();
        Self::group_of_arn(&mut s, target_group_arn)?
            .retain(|(id, _, _)| !targets.iter().any(|(t, _)| t == id));
        Ok(())
    }

    async fn register_targets(
        &self,
        target_group_arn: &str,
        targets: &[(String, Option<i32>)],
    ) -> Result<(), AwsError> {
        let mut s = self.state();
        let group = Self::group_of_arn(&mut s, target_group_arn)?;
        for (id, port) in targets {
            if !group.iter().any(|(t, _, _)| t == id) {
                group.push((id.clone(), *port, "healthy".into()));
            }
        }
        Ok(())
    }

    async fn load_balancers(
        &self,
        names: &[String],
    ) -> Result<Vec<crate::elbv2::LoadBalancer>, AwsError> {
        let s = self.state();
        names
            .iter()
            .map(|n| {
                s.balancers
                    .values()
                    .find(|l| &l.name == n || &l.arn == n)
                    .cloned()
                    .ok_or_else(|| AwsError::NotFound(format!("no load balancer '{n}'")))
            })
            .collect()
    }

    async fn set_security_groups(&self, arn: &str, groups: &[String]) -> Result<(), AwsError> {
        let mut s = self.state();
        Self::balancer_of_arn(&mut s, arn)?.security_groups = groups.to_vec();
        Ok(())
    }

    async fn set_subnets(&self, arn: &str, subnets: &[String]) -> Result<(), AwsError> {
        let mut s = self.state();
        Self::balancer_of_arn(&mut s, arn)?.subnets = subnets.to_vec();
        Ok(())
    }

    async fn access_log(&self, arn: &str) -> Result<(bool, Option<String>), AwsError> {
        Ok(self
            .state()
            .access_logs
            .get(arn)
            .cloned()
            .unwrap_or((false, None)))
    }

    async fn set_access_log(
        &self,
        arn: &str,
        enabled: bool,
        bucket: Option<&str>,
    ) -> Result<(), AwsError> {
        self.state()
            .access_logs
            .insert(arn.into(), (enabled, bucket.map(str::to_string)));
        Ok(())
    }

    async fn tags(&self, arn: &str) -> Result<BTreeMap<String, String>, AwsError> {
        Ok(self.state().tags.get(arn).cloned().unwrap_or_default())
    }
}
