//! Services: `-ha` (Patroni leader, no selector), `-ha-config` (keeps the DCS config alive),
//! `-primary` (+ its Endpoints), `-replicas`, `-pods` (pod DNS) and `-pgbouncer`.

use super::{Ctx, string_map};
use crate::api::common::ServiceExpose;
use crate::labels;
use crate::naming;
use serde_json::{Value, json};

fn patroni_labels(ctx: &Ctx) -> crate::labels::Labels {
    ctx.labels("pg")
        .with(labels::PATRONI, naming::patroni_scope(ctx.name))
}

/// Applies `expose` (type, annotations, labels, source ranges, class, node port) to a Service.
fn exposed(
    ctx: &Ctx,
    name: &str,
    labels: crate::labels::Labels,
    expose: Option<&ServiceExpose>,
    port_name: &str,
    port: i32,
    selector: Value,
) -> Value {
    let labels = match expose {
        Some(e) => {
            let mut l = labels;
            for (k, v) in &e.labels {
                l.0.entry(k.clone()).or_insert(Value::String(v.clone()));
            }
            l
        }
        None => labels,
    };
    let annotations = expose
        .map(|e| string_map(&e.annotations))
        .filter(|m| !m.is_empty());
    let type_ = expose.map_or("ClusterIP", |e| e.service_type().as_str());
    let mut port_v =
        json!({"name": port_name, "port": port, "protocol": "TCP", "targetPort": port_name});
    if let Some(np) = expose.and_then(|e| e.node_port)
        && type_ != "ClusterIP"
    {
        port_v["nodePort"] = json!(np);
    }
    let mut spec = json!({"type": type_, "ports": [port_v]});
    if !selector.is_null() {
        spec["selector"] = selector;
    }
    if let Some(e) = expose
        && type_ == "LoadBalancer"
    {
        {
            if !e.load_balancer_source_ranges.is_empty() {
                spec["loadBalancerSourceRanges"] = json!(e.load_balancer_source_ranges);
            }
            if let Some(c) = &e.load_balancer_class {
                spec["loadBalancerClass"] = json!(c);
            }
        }
    }
    json!({
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": ctx.meta(name, labels, annotations),
        "spec": spec,
    })
}

/// `<cluster>-ha`: no selector; Patroni writes its Endpoints to point at the leader.
pub fn ha(ctx: &Ctx) -> Value {
    exposed(
        ctx,
        &naming::ha_service(ctx.name),
        patroni_labels(ctx),
        ctx.cr.spec.expose.as_ref(),
        "postgres",
        ctx.pg_port(),
        Value::Null,
    )
}

/// `<cluster>-ha-config`: headless, no selector, keeps Patroni's config Endpoints alive.
pub fn ha_config(ctx: &Ctx) -> Value {
    json!({
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": ctx.meta(&naming::ha_config_service(ctx.name), patroni_labels(ctx), None),
        "spec": {"clusterIP": "None", "type": "ClusterIP"},
    })
}

/// `<cluster>-primary`: headless without selector; its Endpoints are the `-ha` ClusterIP.
pub fn primary(ctx: &Ctx) -> Value {
    json!({
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": ctx.meta(&naming::primary_service(ctx.name), ctx.labels("pg").with(labels::ROLE, "primary"), None),
        "spec": {
            "clusterIP": "None",
            "type": "ClusterIP",
            "ports": [{"name": "postgres", "port": ctx.pg_port(), "protocol": "TCP", "targetPort": "postgres"}],
        },
    })
}

/// Endpoints of `<cluster>-primary`, resolving to the ClusterIP of `<cluster>-ha` once the API
/// server has assigned it (so clients of `-primary` follow Patroni's leader through `-ha`).
pub fn primary_endpoints(ctx: &Ctx, ha_cluster_ip: &str) -> Value {
    json!({
        "apiVersion": "v1",
        "kind": "Endpoints",
        "metadata": ctx.meta(&naming::primary_service(ctx.name), ctx.labels("pg").with(labels::ROLE, "primary"), None),
        "subsets": [{
            "addresses": [{"ip": ha_cluster_ip}],
            "ports": [{"name": "postgres", "port": ctx.pg_port(), "protocol": "TCP"}],
        }],
    })
}

pub fn replicas(ctx: &Ctx) -> Value {
    exposed(
        ctx,
        &naming::replicas_service(ctx.name),
        ctx.labels("pg").with(labels::ROLE, labels::ROLE_REPLICA),
        ctx.cr.spec.expose_replicas.as_ref(),
        "postgres",
        ctx.pg_port(),
        json!({labels::CLUSTER: ctx.name, labels::ROLE: labels::ROLE_REPLICA}),
    )
}

/// `<cluster>-pods`: headless, publishes not-ready addresses, gives every pod a DNS name.
pub fn pods(ctx: &Ctx) -> Value {
    json!({
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": ctx.meta(&naming::pods_service(ctx.name), ctx.labels("pg"), None),
        "spec": {
            "clusterIP": "None",
            "type": "ClusterIP",
            "publishNotReadyAddresses": true,
            "selector": {labels::CLUSTER: ctx.name},
        },
    })
}

pub fn pgbouncer(ctx: &Ctx) -> Value {
    exposed(
        ctx,
        &naming::pgbouncer(ctx.name),
        ctx.labels("pgbouncer")
            .with(labels::ROLE, labels::ROLE_PGBOUNCER),
        ctx.cr.pgbouncer().and_then(|p| p.expose.as_ref()),
        "pgbouncer",
        ctx.pgbouncer_port(),
        json!({labels::CLUSTER: ctx.name, labels::ROLE: labels::ROLE_PGBOUNCER}),
    )
}
