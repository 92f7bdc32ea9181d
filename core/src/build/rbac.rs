//! ServiceAccounts, Roles and RoleBindings: instances run Patroni, which uses the Kubernetes API
//! as its DCS (Endpoints, its own Pod's labels and annotations, the `-config` Service).

use super::Ctx;
use crate::naming;
use serde_json::{Value, json};

pub fn instance_service_account(ctx: &Ctx) -> Value {
    json!({
        "apiVersion": "v1",
        "kind": "ServiceAccount",
        "metadata": ctx.meta(&naming::instance_rbac(ctx.name), ctx.labels("pg"), None),
        "automountServiceAccountToken": true,
    })
}

pub fn instance_role(ctx: &Ctx) -> Value {
    json!({
        "apiVersion": "rbac.authorization.k8s.io/v1",
        "kind": "Role",
        "metadata": ctx.meta(&naming::instance_rbac(ctx.name), ctx.labels("pg"), None),
        "rules": [
            {"apiGroups": [""], "resources": ["endpoints"],
             "verbs": ["create", "deletecollection", "get", "list", "patch", "update", "watch"]},
            {"apiGroups": [""], "resources": ["configmaps"],
             "verbs": ["create", "deletecollection", "get", "list", "patch", "update", "watch"]},
            {"apiGroups": [""], "resources": ["pods"], "verbs": ["get", "list", "patch", "watch"]},
            {"apiGroups": [""], "resources": ["services"], "verbs": ["create"]},
        ],
    })
}

fn binding(ctx: &Ctx, name: &str) -> Value {
    json!({
        "apiVersion": "rbac.authorization.k8s.io/v1",
        "kind": "RoleBinding",
        "metadata": ctx.meta(name, ctx.labels("pg"), None),
        "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": name},
        "subjects": [{"kind": "ServiceAccount", "name": name}],
    })
}

pub fn instance_role_binding(ctx: &Ctx) -> Value {
    binding(ctx, &naming::instance_rbac(ctx.name))
}

/// The repo host runs `pgbackrest` against instance pods.
pub fn pgbackrest_service_account(ctx: &Ctx) -> Value {
    json!({
        "apiVersion": "v1",
        "kind": "ServiceAccount",
        "metadata": ctx.meta(&naming::pgbackrest_rbac(ctx.name), ctx.labels("pgbackrest"), None),
        "automountServiceAccountToken": true,
    })
}

pub fn pgbackrest_role(ctx: &Ctx) -> Value {
    json!({
        "apiVersion": "rbac.authorization.k8s.io/v1",
        "kind": "Role",
        "metadata": ctx.meta(&naming::pgbackrest_rbac(ctx.name), ctx.labels("pgbackrest"), None),
        "rules": [
            {"apiGroups": [""], "resources": ["pods"], "verbs": ["get", "list"]},
            {"apiGroups": [""], "resources": ["pods/exec"], "verbs": ["create"]},
        ],
    })
}

pub fn pgbackrest_role_binding(ctx: &Ctx) -> Value {
    binding(ctx, &naming::pgbackrest_rbac(ctx.name))
}
