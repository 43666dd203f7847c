//! chaostoolkit-aws's modules Turbulence has no module of its own for yet:
//! every function of them is refused, with its reason. A service that gets
//! its module (`crate::ecs` is one) takes its functions from here.

use crate::catalogue::{Module, Refusal};

/// Why a function of a service without a module does not run.
const NO_MODULE: &str = "Turbulence has no module for this service yet";

pub static ASG: Module = Module {
    service: "asg",
    title: "Amazon EC2 Auto Scaling",
    activities: &[],
    refused: &[
        Refusal::not_native(
            "chaosaws.asg.actions.suspend_processes",
            "not in the catalogue yet",
        ),
        Refusal::not_native(
            "chaosaws.asg.actions.resume_processes",
            "not in the catalogue yet",
        ),
        Refusal::not_native(
            "chaosaws.asg.actions.stop_random_instances",
            "not in the catalogue yet",
        ),
        Refusal::not_native(
            "chaosaws.asg.actions.terminate_random_instances",
            "not in the catalogue yet",
        ),
        Refusal::not_native(
            "chaosaws.asg.actions.detach_random_instances",
            "not in the catalogue yet",
        ),
        Refusal::not_native(
            "chaosaws.asg.actions.change_subnets",
            "not in the catalogue yet",
        ),
        Refusal::not_native(
            "chaosaws.asg.actions.detach_random_volume",
            "not in the catalogue yet",
        ),
        Refusal::not_native(
            "chaosaws.asg.actions.attach_volume",
            "not in the catalogue yet",
        ),
        Refusal::not_native(
            "chaosaws.asg.probes.desired_equals_healthy",
            "not in the catalogue yet",
        ),
        Refusal::not_native(
            "chaosaws.asg.probes.desired_equals_healthy_tags",
            "not in the catalogue yet",
        ),
        Refusal::not_native(
            "chaosaws.asg.probes.wait_desired_equals_healthy",
            "not in the catalogue yet",
        ),
        Refusal::not_native(
            "chaosaws.asg.probes.wait_desired_equals_healthy_tags",
            "not in the catalogue yet",
        ),
        Refusal::not_native(
            "chaosaws.asg.probes.is_scaling_in_progress",
            "not in the catalogue yet",
        ),
        Refusal::not_native(
            "chaosaws.asg.probes.process_is_suspended",
            "not in the catalogue yet",
        ),
        Refusal::not_native(
            "chaosaws.asg.probes.has_subnets",
            "not in the catalogue yet",
        ),
        Refusal::not_native(
            "chaosaws.asg.probes.describe_auto_scaling_groups",
            "not in the catalogue yet",
        ),
        Refusal::not_native(
            "chaosaws.asg.probes.instance_count_by_health",
            "not in the catalogue yet",
        ),
        Refusal::not_native(
            "chaosaws.asg.probes.wait_desired_not_equals_healthy_tags",
            "not in the catalogue yet",
        ),
    ],
};

pub static EC2: Module = Module {
    service: "ec2",
    title: "Amazon EC2",
    activities: &[],
    refused: &[
        Refusal::not_native("chaosaws.ec2.actions.stop_instance", "not in the catalogue yet"),
        Refusal::not_native("chaosaws.ec2.actions.stop_instances", "not in the catalogue yet"),
        Refusal::destructive(
            "chaosaws.ec2.actions.terminate_instances",
            "terminated instances and their instance-store data are gone; an auto-scaling group replaces its own (asg terminate_random_instances)",
        ),
        Refusal::destructive(
            "chaosaws.ec2.actions.terminate_instance",
            "a terminated instance and its instance-store data are gone; an auto-scaling group replaces its own (asg terminate_random_instances)",
        ),
        Refusal::not_native("chaosaws.ec2.actions.start_instances", "not in the catalogue yet"),
        Refusal::not_native("chaosaws.ec2.actions.restart_instances", "not in the catalogue yet"),
        Refusal::not_native("chaosaws.ec2.actions.detach_random_volume", "not in the catalogue yet"),
        Refusal::not_native("chaosaws.ec2.actions.attach_volume", "not in the catalogue yet"),
        Refusal::not_native("chaosaws.ec2.actions.stop_instances_by_incremental_steps", "not in the catalogue yet"),
        Refusal::not_native("chaosaws.ec2.actions.set_tags_on_instances", "not in the catalogue yet"),
        Refusal::not_native("chaosaws.ec2.actions.remove_tags_from_instances", "not in the catalogue yet"),
        Refusal::not_native("chaosaws.ec2.probes.describe_instances", "not in the catalogue yet"),
        Refusal::not_native("chaosaws.ec2.probes.count_instances", "not in the catalogue yet"),
        Refusal::not_native("chaosaws.ec2.probes.instance_state", "not in the catalogue yet"),
        Refusal::not_native("chaosaws.ec2.probes.count_min_instances", "not in the catalogue yet"),
    ],
};

pub static RDS: Module = Module {
    service: "rds",
    title: "Amazon RDS",
    activities: &[],
    refused: &[
        Refusal::not_native(
            "chaosaws.rds.actions.failover_db_cluster",
            "not in the catalogue yet",
        ),
        Refusal::not_native(
            "chaosaws.rds.actions.reboot_db_instance",
            "not in the catalogue yet",
        ),
        Refusal::not_native(
            "chaosaws.rds.actions.stop_db_instance",
            "not in the catalogue yet",
        ),
        Refusal::not_native(
            "chaosaws.rds.actions.stop_db_cluster",
            "not in the catalogue yet",
        ),
        Refusal::destructive(
            "chaosaws.rds.actions.delete_db_instance",
            "the database instance is gone (a final snapshot restores a new one, not it)",
        ),
        Refusal::destructive(
            "chaosaws.rds.actions.delete_db_cluster",
            "the cluster is gone (a final snapshot restores a new one, not it)",
        ),
        Refusal::destructive(
            "chaosaws.rds.actions.delete_db_cluster_endpoint",
            "the endpoint is gone, and clients that used its name fail until one is made again",
        ),
        Refusal::not_native(
            "chaosaws.rds.probes.instance_status",
            "not in the catalogue yet",
        ),
        Refusal::not_native(
            "chaosaws.rds.probes.cluster_status",
            "not in the catalogue yet",
        ),
        Refusal::not_native(
            "chaosaws.rds.probes.cluster_membership_count",
            "not in the catalogue yet",
        ),
    ],
};

pub static FIS: Module = Module {
    service: "fis",
    title: "AWS Fault Injection Service",
    activities: &[],
    refused: &[
        Refusal::not_native(
            "chaosaws.fis.actions.start_experiment",
            "not in the catalogue yet",
        ),
        Refusal::not_native(
            "chaosaws.fis.actions.stop_experiment",
            "not in the catalogue yet",
        ),
        Refusal::not_native(
            "chaosaws.fis.actions.stop_experiments_by_tags",
            "not in the catalogue yet",
        ),
        Refusal::not_native(
            "chaosaws.fis.actions.start_stress_pod_delete_scenario",
            "not in the catalogue yet",
        ),
        Refusal::not_native(
            "chaosaws.fis.actions.start_availability_zone_power_interruption_scenario",
            "not in the catalogue yet",
        ),
        Refusal::not_native(
            "chaosaws.fis.actions.restore_availability_zone_power_after_interruption",
            "not in the catalogue yet",
        ),
        Refusal::not_native(
            "chaosaws.fis.probes.get_experiment",
            "not in the catalogue yet",
        ),
    ],
};

pub static EKS: Module = Module {
    service: "eks",
    title: "Amazon EKS",
    activities: &[],
    refused: &[
        Refusal::not_native(
            "chaosaws.eks.actions.create_cluster",
            "it provisions a cluster: infrastructure, not an experiment",
        ),
        Refusal::destructive(
            "chaosaws.eks.actions.delete_cluster",
            "the cluster and its workloads are gone",
        ),
        Refusal::not_native("chaosaws.eks.probes.describe_cluster", NO_MODULE),
        Refusal::not_native("chaosaws.eks.probes.list_clusters", NO_MODULE),
    ],
};

pub static ELASTICACHE: Module = Module {
    service: "elasticache",
    title: "Amazon ElastiCache",
    activities: &[],
    refused: &[
        Refusal::not_native(
            "chaosaws.elasticache.actions.reboot_cache_clusters",
            NO_MODULE,
        ),
        Refusal::destructive(
            "chaosaws.elasticache.actions.delete_cache_clusters",
            "the cache clusters and their data are gone",
        ),
        Refusal::destructive(
            "chaosaws.elasticache.actions.delete_replication_groups",
            "the replication groups and their data are gone",
        ),
        Refusal::not_native("chaosaws.elasticache.actions.test_failover", NO_MODULE),
        Refusal::not_native(
            "chaosaws.elasticache.probes.describe_cache_cluster",
            NO_MODULE,
        ),
        Refusal::not_native(
            "chaosaws.elasticache.probes.get_cache_node_count",
            NO_MODULE,
        ),
        Refusal::not_native(
            "chaosaws.elasticache.probes.get_cache_node_status",
            NO_MODULE,
        ),
        Refusal::not_native(
            "chaosaws.elasticache.probes.count_cache_clusters_from_replication_group",
            NO_MODULE,
        ),
    ],
};

pub static EMR: Module = Module {
    service: "emr",
    title: "Amazon EMR",
    activities: &[],
    refused: &[
        Refusal::not_native("chaosaws.emr.actions.modify_cluster", NO_MODULE),
        Refusal::not_native("chaosaws.emr.actions.modify_instance_fleet", NO_MODULE),
        Refusal::not_native(
            "chaosaws.emr.actions.modify_instance_groups_instance_count",
            NO_MODULE,
        ),
        Refusal::not_native(
            "chaosaws.emr.actions.modify_instance_groups_shrink_policy",
            NO_MODULE,
        ),
        Refusal::not_native("chaosaws.emr.probes.describe_cluster", NO_MODULE),
        Refusal::not_native("chaosaws.emr.probes.describe_instance_fleet", NO_MODULE),
        Refusal::not_native("chaosaws.emr.probes.describe_instance_group", NO_MODULE),
        Refusal::not_native(
            "chaosaws.emr.probes.list_cluster_fleet_instances",
            NO_MODULE,
        ),
        Refusal::not_native(
            "chaosaws.emr.probes.list_cluster_group_instances",
            NO_MODULE,
        ),
    ],
};

pub static IAM: Module = Module {
    service: "iam",
    title: "AWS IAM",
    activities: &[],
    refused: &[
        Refusal::not_native(
            "chaosaws.iam.actions.attach_role_policy",
            "Turbulence's roles may not change IAM: a chaos tool able to grant permissions holds every permission",
        ),
        Refusal::not_native(
            "chaosaws.iam.actions.create_policy",
            "Turbulence's roles may not change IAM: a chaos tool able to grant permissions holds every permission",
        ),
        Refusal::not_native(
            "chaosaws.iam.actions.detach_role_policy",
            "Turbulence's roles may not change IAM: a chaos tool able to grant permissions holds every permission",
        ),
        Refusal::not_native("chaosaws.iam.probes.get_policy", NO_MODULE),
    ],
};

pub static INCIDENTS: Module = Module {
    service: "incidents",
    title: "AWS Systems Manager Incident Manager",
    activities: &[],
    refused: &[
        Refusal::not_native("chaosaws.incidents.probes.get_incidents", NO_MODULE),
        Refusal::not_native("chaosaws.incidents.probes.get_active_incidents", NO_MODULE),
        Refusal::not_native(
            "chaosaws.incidents.probes.get_resolved_incidents",
            NO_MODULE,
        ),
        Refusal::not_native(
            "chaosaws.incidents.probes.has_incident_been_opened",
            NO_MODULE,
        ),
        Refusal::not_native(
            "chaosaws.incidents.probes.has_incident_been_resolved",
            NO_MODULE,
        ),
        Refusal::not_native(
            "chaosaws.incidents.probes.get_active_incident_items",
            NO_MODULE,
        ),
        Refusal::not_native(
            "chaosaws.incidents.probes.get_resolved_incident_items",
            NO_MODULE,
        ),
    ],
};

pub static MSK: Module = Module {
    service: "msk",
    title: "Amazon MSK",
    activities: &[],
    refused: &[
        Refusal::not_native("chaosaws.msk.actions.reboot_msk_broker", NO_MODULE),
        Refusal::destructive(
            "chaosaws.msk.actions.delete_cluster",
            "the cluster and its topics are gone",
        ),
        Refusal::not_native("chaosaws.msk.probes.describe_msk_cluster", NO_MODULE),
        Refusal::not_native("chaosaws.msk.probes.get_bootstrap_servers", NO_MODULE),
    ],
};

pub static ROUTE53: Module = Module {
    service: "route53",
    title: "Amazon Route 53",
    activities: &[],
    refused: &[
        Refusal::not_native(
            "chaosaws.route53.actions.associate_vpc_with_zone",
            NO_MODULE,
        ),
        Refusal::not_native(
            "chaosaws.route53.actions.disassociate_vpc_from_zone",
            NO_MODULE,
        ),
        Refusal::not_native("chaosaws.route53.probes.get_hosted_zone", NO_MODULE),
        Refusal::not_native("chaosaws.route53.probes.get_health_check_status", NO_MODULE),
        Refusal::not_native("chaosaws.route53.probes.get_dns_answer", NO_MODULE),
    ],
};

pub static S3: Module = Module {
    service: "s3",
    title: "Amazon S3",
    activities: &[],
    refused: &[
        Refusal::destructive(
            "chaosaws.s3.actions.delete_object",
            "the object is gone (in an unversioned bucket, for good)",
        ),
        Refusal::not_native("chaosaws.s3.actions.toggle_versioning", NO_MODULE),
        Refusal::not_native("chaosaws.s3.probes.bucket_exists", NO_MODULE),
        Refusal::not_native("chaosaws.s3.probes.object_exists", NO_MODULE),
    ],
};

pub static XRAY: Module = Module {
    service: "xray",
    title: "AWS X-Ray",
    activities: &[],
    refused: &[
        Refusal::not_native("chaosaws.xray.probes.get_traces", NO_MODULE),
        Refusal::not_native("chaosaws.xray.probes.get_traces_summaries", NO_MODULE),
        Refusal::not_native("chaosaws.xray.probes.get_most_recent_trace", NO_MODULE),
        Refusal::not_native("chaosaws.xray.probes.get_service_graph", NO_MODULE),
    ],
};
