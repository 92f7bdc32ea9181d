//! Just enough Kubernetes protobuf decoding for the objects `kubectl create <kind>` sends
//! (kubectl 1.32 posts built-in types as `application/vnd.kubernetes.protobuf`). Decodes the
//! `k8s\0` envelope (runtime.Unknown) and the fields of the common kinds into JSON; unknown
//! fields are skipped. Field numbers are those of the upstream generated.proto files.

use serde_json::{Map, Value, json};

#[derive(Clone, Copy)]
enum K {
    Str,
    Bytes,
    Int,
    Bool,
    Quantity,
    IntOrString,
    Msg(&'static [F]),
    MapStr,
    MapBytes,
    MapQuantity,
    RepStr,
    RepMsg(&'static [F]),
}

type F = (u32, &'static str, K);

const OWNER_REF: &[F] = &[
    (1, "kind", K::Str),
    (3, "name", K::Str),
    (4, "uid", K::Str),
    (5, "apiVersion", K::Str),
    (6, "controller", K::Bool),
    (7, "blockOwnerDeletion", K::Bool),
];
const META: &[F] = &[
    (1, "name", K::Str),
    (2, "generateName", K::Str),
    (3, "namespace", K::Str),
    (5, "uid", K::Str),
    (6, "resourceVersion", K::Str),
    (7, "generation", K::Int),
    (11, "labels", K::MapStr),
    (12, "annotations", K::MapStr),
    (13, "ownerReferences", K::RepMsg(OWNER_REF)),
    (14, "finalizers", K::RepStr),
];
const LABEL_REQ: &[F] = &[
    (1, "key", K::Str),
    (2, "operator", K::Str),
    (3, "values", K::RepStr),
];
const SELECTOR: &[F] = &[
    (1, "matchLabels", K::MapStr),
    (2, "matchExpressions", K::RepMsg(LABEL_REQ)),
];
const PORT: &[F] = &[
    (1, "name", K::Str),
    (2, "hostPort", K::Int),
    (3, "containerPort", K::Int),
    (4, "protocol", K::Str),
];
const ENV: &[F] = &[(1, "name", K::Str), (2, "value", K::Str)];
const RESOURCES: &[F] = &[
    (1, "limits", K::MapQuantity),
    (2, "requests", K::MapQuantity),
];
const MOUNT: &[F] = &[
    (1, "name", K::Str),
    (2, "readOnly", K::Bool),
    (3, "mountPath", K::Str),
    (4, "subPath", K::Str),
];
const CONTAINER: &[F] = &[
    (1, "name", K::Str),
    (2, "image", K::Str),
    (3, "command", K::RepStr),
    (4, "args", K::RepStr),
    (5, "workingDir", K::Str),
    (6, "ports", K::RepMsg(PORT)),
    (7, "env", K::RepMsg(ENV)),
    (8, "resources", K::Msg(RESOURCES)),
    (9, "volumeMounts", K::RepMsg(MOUNT)),
    (13, "terminationMessagePath", K::Str),
    (14, "imagePullPolicy", K::Str),
    (20, "terminationMessagePolicy", K::Str),
];
const POD_SPEC: &[F] = &[
    (2, "containers", K::RepMsg(CONTAINER)),
    (3, "restartPolicy", K::Str),
    (4, "terminationGracePeriodSeconds", K::Int),
    (5, "activeDeadlineSeconds", K::Int),
    (6, "dnsPolicy", K::Str),
    (7, "nodeSelector", K::MapStr),
    (8, "serviceAccountName", K::Str),
    (10, "nodeName", K::Str),
    (19, "schedulerName", K::Str),
    (20, "initContainers", K::RepMsg(CONTAINER)),
];
const TEMPLATE: &[F] = &[(1, "metadata", K::Msg(META)), (2, "spec", K::Msg(POD_SPEC))];
const DEPLOY_SPEC: &[F] = &[
    (1, "replicas", K::Int),
    (2, "selector", K::Msg(SELECTOR)),
    (3, "template", K::Msg(TEMPLATE)),
    (5, "minReadySeconds", K::Int),
    (6, "revisionHistoryLimit", K::Int),
    (7, "paused", K::Bool),
    (9, "progressDeadlineSeconds", K::Int),
];
const JOB_SPEC: &[F] = &[
    (1, "parallelism", K::Int),
    (2, "completions", K::Int),
    (3, "activeDeadlineSeconds", K::Int),
    (4, "selector", K::Msg(SELECTOR)),
    (5, "manualSelector", K::Bool),
    (6, "template", K::Msg(TEMPLATE)),
    (7, "backoffLimit", K::Int),
    (8, "ttlSecondsAfterFinished", K::Int),
    (10, "suspend", K::Bool),
];
const JOB_TEMPLATE: &[F] = &[(1, "metadata", K::Msg(META)), (2, "spec", K::Msg(JOB_SPEC))];
const CRON_SPEC: &[F] = &[
    (1, "schedule", K::Str),
    (2, "startingDeadlineSeconds", K::Int),
    (3, "concurrencyPolicy", K::Str),
    (4, "suspend", K::Bool),
    (5, "jobTemplate", K::Msg(JOB_TEMPLATE)),
    (6, "successfulJobsHistoryLimit", K::Int),
    (7, "failedJobsHistoryLimit", K::Int),
    (8, "timeZone", K::Str),
];
const SVC_PORT: &[F] = &[
    (1, "name", K::Str),
    (2, "protocol", K::Str),
    (3, "port", K::Int),
    (4, "targetPort", K::IntOrString),
    (5, "nodePort", K::Int),
];
const SVC_SPEC: &[F] = &[
    (1, "ports", K::RepMsg(SVC_PORT)),
    (2, "selector", K::MapStr),
    (3, "clusterIP", K::Str),
    (4, "type", K::Str),
    (7, "sessionAffinity", K::Str),
    (11, "externalName", K::Str),
];
const NS_SPEC: &[F] = &[(1, "finalizers", K::RepStr)];
const POLICY_RULE: &[F] = &[
    (1, "verbs", K::RepStr),
    (3, "apiGroups", K::RepStr),
    (4, "resources", K::RepStr),
    (5, "resourceNames", K::RepStr),
    (6, "nonResourceURLs", K::RepStr),
];
const SUBJECT: &[F] = &[
    (1, "kind", K::Str),
    (2, "apiGroup", K::Str),
    (3, "name", K::Str),
    (4, "namespace", K::Str),
];
const ROLE_REF: &[F] = &[
    (1, "apiGroup", K::Str),
    (2, "kind", K::Str),
    (3, "name", K::Str),
];
const PDB_SPEC: &[F] = &[
    (1, "minAvailable", K::IntOrString),
    (2, "selector", K::Msg(SELECTOR)),
    (3, "maxUnavailable", K::IntOrString),
];
const QUOTA_SPEC: &[F] = &[(1, "hard", K::MapQuantity)];
const LOCAL_REF: &[F] = &[(1, "name", K::Str)];
const PRECONDITIONS: &[F] = &[(1, "uid", K::Str), (2, "resourceVersion", K::Str)];
const DELETE_OPTIONS: &[F] = &[
    (1, "gracePeriodSeconds", K::Int),
    (2, "preconditions", K::Msg(PRECONDITIONS)),
    (3, "orphanDependents", K::Bool),
    (4, "propagationPolicy", K::Str),
    (5, "dryRun", K::RepStr),
];

fn kind_fields(kind: &str) -> Option<&'static [F]> {
    Some(match kind {
        "ConfigMap" => &[
            (1, "metadata", K::Msg(META)),
            (2, "data", K::MapStr),
            (3, "binaryData", K::MapBytes),
            (4, "immutable", K::Bool),
        ],
        "Secret" => &[
            (1, "metadata", K::Msg(META)),
            (2, "data", K::MapBytes),
            (3, "type", K::Str),
            (4, "stringData", K::MapStr),
            (5, "immutable", K::Bool),
        ],
        "Namespace" => &[(1, "metadata", K::Msg(META)), (2, "spec", K::Msg(NS_SPEC))],
        // policy/v1 Eviction, which `kubectl drain` posts to pods/eviction.
        "Eviction" => &[
            (1, "metadata", K::Msg(META)),
            (2, "deleteOptions", K::Msg(DELETE_OPTIONS)),
        ],
        "ServiceAccount" => &[
            (1, "metadata", K::Msg(META)),
            (3, "imagePullSecrets", K::RepMsg(LOCAL_REF)),
            (4, "automountServiceAccountToken", K::Bool),
        ],
        "Service" => &[(1, "metadata", K::Msg(META)), (2, "spec", K::Msg(SVC_SPEC))],
        "Pod" => &[(1, "metadata", K::Msg(META)), (2, "spec", K::Msg(POD_SPEC))],
        "Deployment" | "ReplicaSet" | "StatefulSet" => &[
            (1, "metadata", K::Msg(META)),
            (2, "spec", K::Msg(DEPLOY_SPEC)),
        ],
        "Job" => &[(1, "metadata", K::Msg(META)), (2, "spec", K::Msg(JOB_SPEC))],
        "CronJob" => &[
            (1, "metadata", K::Msg(META)),
            (2, "spec", K::Msg(CRON_SPEC)),
        ],
        "Role" | "ClusterRole" => &[
            (1, "metadata", K::Msg(META)),
            (2, "rules", K::RepMsg(POLICY_RULE)),
        ],
        "RoleBinding" | "ClusterRoleBinding" => &[
            (1, "metadata", K::Msg(META)),
            (2, "subjects", K::RepMsg(SUBJECT)),
            (3, "roleRef", K::Msg(ROLE_REF)),
        ],
        "PodDisruptionBudget" => &[(1, "metadata", K::Msg(META)), (2, "spec", K::Msg(PDB_SPEC))],
        "ResourceQuota" => &[
            (1, "metadata", K::Msg(META)),
            (2, "spec", K::Msg(QUOTA_SPEC)),
        ],
        "PriorityClass" => &[
            (1, "metadata", K::Msg(META)),
            (2, "value", K::Int),
            (3, "globalDefault", K::Bool),
            (4, "description", K::Str),
            (5, "preemptionPolicy", K::Str),
        ],
        _ => return None,
    })
}

struct Reader<'a> {
    b: &'a [u8],
    i: usize,
}

enum Wire<'a> {
    Varint(u64),
    Bytes(&'a [u8]),
    Fixed,
}

impl<'a> Reader<'a> {
    fn varint(&mut self) -> Option<u64> {
        let mut v = 0u64;
        for shift in (0..64).step_by(7) {
            let byte = *self.b.get(self.i)?;
            self.i += 1;
            v |= u64::from(byte & 0x7f) << shift;
            if byte < 0x80 {
                return Some(v);
            }
        }
        None
    }

    fn next(&mut self) -> Option<(u32, Wire<'a>)> {
        if self.i >= self.b.len() {
            return None;
        }
        let key = self.varint()?;
        let field = (key >> 3) as u32;
        match key & 7 {
            0 => Some((field, Wire::Varint(self.varint()?))),
            2 => {
                let len = self.varint()? as usize;
                let s = self.b.get(self.i..self.i + len)?;
                self.i += len;
                Some((field, Wire::Bytes(s)))
            }
            1 => {
                self.i += 8;
                Some((field, Wire::Fixed))
            }
            5 => {
                self.i += 4;
                Some((field, Wire::Fixed))
            }
            _ => None,
        }
    }
}

fn string(b: &[u8]) -> Value {
    Value::String(String::from_utf8_lossy(b).into_owned())
}

pub(crate) fn base64(b: &[u8]) -> String {
    const T: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::new();
    for c in b.chunks(3) {
        let n = (u32::from(c[0]) << 16)
            | (u32::from(*c.get(1).unwrap_or(&0)) << 8)
            | u32::from(*c.get(2).unwrap_or(&0));
        out.push(T[(n >> 18) as usize & 63] as char);
        out.push(T[(n >> 12) as usize & 63] as char);
        out.push(if c.len() > 1 {
            T[(n >> 6) as usize & 63] as char
        } else {
            '='
        });
        out.push(if c.len() > 2 {
            T[n as usize & 63] as char
        } else {
            '='
        });
    }
    out
}

fn map_entry(b: &[u8], val: K) -> (String, Value) {
    let mut r = Reader { b, i: 0 };
    let (mut k, mut v) = (String::new(), Value::Null);
    while let Some((f, w)) = r.next() {
        if let Wire::Bytes(s) = w {
            match f {
                1 => k = String::from_utf8_lossy(s).into_owned(),
                2 => {
                    v = match val {
                        K::Bytes => json!(base64(s)),
                        K::Quantity => message(s, &[(1, "string", K::Str)])
                            .get("string")
                            .cloned()
                            .unwrap_or(Value::Null),
                        _ => string(s),
                    }
                }
                _ => {}
            }
        }
    }
    if v.is_null() {
        v = match val {
            K::Bytes | K::Str => json!(""),
            _ => Value::Null,
        };
    }
    (k, v)
}

fn message(b: &[u8], fields: &[F]) -> Value {
    let mut out = Map::new();
    let mut r = Reader { b, i: 0 };
    while let Some((num, w)) = r.next() {
        let Some(&(_, name, kind)) = fields.iter().find(|f| f.0 == num) else {
            continue;
        };
        match (kind, w) {
            // Go writes every non-pointer field; JSON's omitempty drops the zero values.
            (K::Str, Wire::Bytes(s)) if !s.is_empty() => {
                out.insert(name.into(), string(s));
            }
            (K::Int, Wire::Varint(0))
                if !matches!(
                    name,
                    "containerPort"
                        | "port"
                        | "replicas"
                        | "value"
                        | "parallelism"
                        | "completions"
                        | "backoffLimit"
                ) => {}
            (K::Bool, Wire::Varint(0))
                if !matches!(
                    name,
                    "immutable"
                        | "paused"
                        | "suspend"
                        | "globalDefault"
                        | "automountServiceAccountToken"
                        | "controller"
                        | "blockOwnerDeletion"
                        | "manualSelector"
                ) => {}
            (K::Bytes, Wire::Bytes(s)) => {
                out.insert(name.into(), json!(base64(s)));
            }
            (K::Int, Wire::Varint(v)) => {
                out.insert(name.into(), json!(v as i64));
            }
            (K::Bool, Wire::Varint(v)) => {
                out.insert(name.into(), json!(v != 0));
            }
            (K::Quantity, Wire::Bytes(s)) => {
                let q = message(s, &[(1, "string", K::Str)]);
                out.insert(name.into(), q.get("string").cloned().unwrap_or(json!("")));
            }
            (K::IntOrString, Wire::Bytes(s)) => {
                let v = message(
                    s,
                    &[
                        (1, "type", K::Int),
                        (2, "intVal", K::Int),
                        (3, "strVal", K::Str),
                    ],
                );
                let val = if v.get("type").and_then(Value::as_i64) == Some(1) {
                    v.get("strVal").cloned().unwrap_or(json!(""))
                } else {
                    v.get("intVal").cloned().unwrap_or(json!(0))
                };
                out.insert(name.into(), val);
            }
            (K::Msg(f), Wire::Bytes(s)) => {
                out.insert(name.into(), message(s, f));
            }
            (K::MapStr | K::MapBytes | K::MapQuantity, Wire::Bytes(s)) => {
                let val = match kind {
                    K::MapBytes => K::Bytes,
                    K::MapQuantity => K::Quantity,
                    _ => K::Str,
                };
                let (k, v) = map_entry(s, val);
                let m = out.entry(name).or_insert_with(|| json!({}));
                m[k] = v;
            }
            (K::RepStr, Wire::Bytes(s)) => {
                let a = out.entry(name).or_insert_with(|| json!([]));
                if let Some(a) = a.as_array_mut() {
                    a.push(string(s));
                }
            }
            (K::RepMsg(f), Wire::Bytes(s)) => {
                let a = out.entry(name).or_insert_with(|| json!([]));
                if let Some(a) = a.as_array_mut() {
                    a.push(message(s, f));
                }
            }
            _ => {}
        }
    }
    Value::Object(out)
}

/// Decode a `k8s\0`-prefixed protobuf body into a JSON object, when its kind is one we know.
pub fn decode(body: &[u8]) -> Option<Value> {
    let rest = body.strip_prefix(b"k8s\0")?;
    let env = message_raw(rest)?;
    let (api_version, kind, raw) = env;
    let fields = kind_fields(&kind)?;
    let mut obj = message(raw, fields);
    obj["apiVersion"] = json!(api_version);
    obj["kind"] = json!(kind);
    Some(obj)
}

/// runtime.Unknown: typeMeta (1: apiVersion, 2: kind), raw (2).
fn message_raw(b: &[u8]) -> Option<(String, String, &[u8])> {
    let mut r = Reader { b, i: 0 };
    let (mut av, mut kind, mut raw): (String, String, &[u8]) = (String::new(), String::new(), &[]);
    while let Some((f, w)) = r.next() {
        match (f, w) {
            (1, Wire::Bytes(tm)) => {
                let t = message(tm, &[(1, "apiVersion", K::Str), (2, "kind", K::Str)]);
                av = t
                    .get("apiVersion")
                    .and_then(Value::as_str)
                    .unwrap_or_default()
                    .into();
                kind = t
                    .get("kind")
                    .and_then(Value::as_str)
                    .unwrap_or_default()
                    .into();
            }
            (2, Wire::Bytes(s)) => raw = s,
            _ => {}
        }
    }
    (!kind.is_empty()).then_some((av, kind, raw))
}
