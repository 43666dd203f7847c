//! The fakes, and the run context an activity sees, for the service
//! modules' tests.

use std::collections::BTreeMap;

use rand::SeedableRng;
use serde_json::Value;

use crate::fake::{
    FakeAlarms, FakeEcs, FakeExecutions, FakeFunctions, FakeLoadBalancing, FakeMetrics,
    FakeParameters,
};
use crate::{ActivityError, AwsError, BlastRadius, Call, Context, Outcome, Ports, Undo, UndoLog};

/// A call the test means to be valid.
pub fn call(function: &str, arguments: Value) -> Call {
    Call::parse(&crate::catalogue::spec(function, arguments))
        .unwrap_or_else(|e| panic!("{function}: {e}"))
}

/// Keeps what it is told; fails when asked to, as SSM may.
#[derive(Default)]
pub struct RecordingUndoLog {
    undos: std::sync::Mutex<Vec<Undo>>,
    pub fail: bool,
}

impl RecordingUndoLog {
    pub fn undos(&self) -> Vec<Undo> {
        self.undos.lock().unwrap().clone()
    }
}

#[async_trait::async_trait]
impl UndoLog for RecordingUndoLog {
    async fn will_change(&self, undo: &Undo) -> Result<(), AwsError> {
        if self.fail {
            return Err(AwsError::Other("ssm:PutParameter: access denied".into()));
        }
        self.undos.lock().unwrap().push(undo.clone());
        Ok(())
    }
}

pub struct T {
    pub ecs: FakeEcs,
    pub alarms: FakeAlarms,
    pub parameters: FakeParameters,
    pub functions: FakeFunctions,
    pub load_balancing: FakeLoadBalancing,
    pub metrics: FakeMetrics,
    pub executions: std::sync::Arc<FakeExecutions>,
    pub runs: Vec<String>,
    pub baselines: BTreeMap<String, Value>,
    pub rng: rand::rngs::StdRng,
    pub abort_alarms: Vec<String>,
    pub kill_switch: Option<String>,
    pub poll_interval: std::time::Duration,
    pub undo_log: RecordingUndoLog,
    pub blast_radius: BlastRadius,
    pub load_limits: load::Limits,
    pub environment: BTreeMap<String, String>,
}

impl T {
    pub fn new(ecs: FakeEcs) -> T {
        T {
            ecs,
            alarms: FakeAlarms::default(),
            parameters: FakeParameters::default(),
            functions: FakeFunctions::default(),
            load_balancing: FakeLoadBalancing::default(),
            metrics: FakeMetrics::default(),
            executions: Default::default(),
            runs: Vec::new(),
            baselines: BTreeMap::new(),
            rng: rand::rngs::StdRng::seed_from_u64(7),
            abort_alarms: Vec::new(),
            kill_switch: None,
            poll_interval: std::time::Duration::from_millis(10),
            undo_log: RecordingUndoLog::default(),
            // Permissive, so tests of other behaviour are not capped.
            blast_radius: BlastRadius {
                max_task_percent: 100,
                min_remaining_tasks: 0,
            },
            load_limits: load::Limits {
                allowed_hosts: vec!["127.0.0.1".into()],
                // The local stack's opt-out: the target is on loopback.
                allow_loopback: true,
                ..Default::default()
            },
            environment: BTreeMap::new(),
        }
    }

    pub fn ports(&self) -> Ports<'_> {
        Ports {
            ecs: &self.ecs,
            alarms: &self.alarms,
            metrics: &self.metrics,
            parameters: &self.parameters,
            functions: &self.functions,
            load_balancing: &self.load_balancing,
            executions: &*self.executions,
            environment: &self.environment,
        }
    }

    pub async fn run(&mut self, call: &Call) -> Result<Outcome, ActivityError> {
        let ports = Ports {
            ecs: &self.ecs,
            alarms: &self.alarms,
            metrics: &self.metrics,
            parameters: &self.parameters,
            functions: &self.functions,
            load_balancing: &self.load_balancing,
            executions: &*self.executions,
            environment: &self.environment,
        };
        let mut ctx = Context {
            baselines: &mut self.baselines,
            rng: &mut self.rng,
            now: time::OffsetDateTime::now_utc(),
            experiment_time_left: std::time::Duration::from_secs(600),
            abort_alarms: &self.abort_alarms,
            kill_switch: self.kill_switch.as_deref(),
            runs: &self.runs,
            poll_interval: self.poll_interval,
            undo_log: &self.undo_log,
            blast_radius: self.blast_radius,
            load_limits: &self.load_limits,
            step: "step",
        };
        crate::run(call, &ports, &mut ctx).await
    }

    pub async fn preflight(&self, call: &Call, caps: &BlastRadius) -> Result<(), ActivityError> {
        crate::preflight(call, &self.ports(), caps).await
    }
}
