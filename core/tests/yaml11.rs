//! `tusk_core::yaml`: YAML read as kubectl reads it (YAML 1.1 booleans), against serde_yaml's
//! YAML 1.2 reading of the same text.

use rstest::rstest;
use serde_json::{Value, json};
use tusk_core::yaml::{self, Yaml11Boolean};

#[rstest]
#[case::yes("yes", json!(true))]
#[case::yes_title("Yes", json!(true))]
#[case::yes_upper("YES", json!(true))]
#[case::y("y", json!(true))]
#[case::y_upper("Y", json!(true))]
#[case::on("on", json!(true))]
#[case::on_title("On", json!(true))]
#[case::on_upper("ON", json!(true))]
#[case::no("no", json!(false))]
#[case::no_title("No", json!(false))]
#[case::no_upper("NO", json!(false))]
#[case::n("n", json!(false))]
#[case::n_upper("N", json!(false))]
#[case::off("off", json!(false))]
#[case::off_title("Off", json!(false))]
#[case::off_upper("OFF", json!(false))]
#[case::true_title("True", json!(true))]
#[case::false_upper("FALSE", json!(false))]
#[case::true_lower("true", json!(true))]
// Not booleans in either YAML version.
#[case::mixed_case("yEs", json!("yEs"))]
#[case::o("o", json!("o"))]
#[case::yes_with_more("yes please", json!("yes please"))]
#[case::number("5", json!(5))]
#[case::null("~", json!(null))]
// Quoted and tagged scalars stay strings, as in go-yaml v2.
#[case::double_quoted("\"yes\"", json!("yes"))]
#[case::single_quoted("'off'", json!("off"))]
#[case::str_tag("!!str on", json!("on"))]
#[case::literal_block("|-\n    yes", json!("yes"))]
fn scalars_read_as_kubectl_reads_them(#[case] written: &str, #[case] expected: Value) {
    let text = format!("spec:\n  field: {written}\n");
    let value = yaml::from_str(&text).unwrap();
    assert_eq!(value["spec"]["field"], expected, "{text}");
}

#[rstest]
#[case::flow_sequence("list: [yes, 'no', off]", json!({"list": [true, "no", false]}))]
#[case::flow_mapping("m: {a: on, b: \"on\"}", json!({"m": {"a": true, "b": "on"}}))]
#[case::block_sequence("list:\n- y\n- n\n- \"y\"", json!({"list": [true, false, "y"]}))]
#[case::anchor_and_alias("a: &x yes\nb: *x", json!({"a": true, "b": true}))]
#[case::keys("on: 1\n\"off\": 2\n3: c\nN: d", json!({"true": 1, "off": 2, "3": "c", "false": "d"}))]
#[case::merge_key(
    "d: &d {storage: 1Gi, mode: rw}\nv:\n  <<: *d\n  storage: 5Gi",
    json!({"d": {"storage": "1Gi", "mode": "rw"}, "v": {"storage": "5Gi", "mode": "rw"}})
)]
#[case::merge_key_list(
    "a: &a {p: 1, q: 1}\nb: &b {q: 2, r: 2}\nc:\n  <<: [*a, *b]\n  r: 3",
    json!({"a": {"p": 1, "q": 1}, "b": {"q": 2, "r": 2}, "c": {"p": 1, "q": 1, "r": 3}})
)]
fn structures_read_as_kubectl_reads_them(#[case] text: &str, #[case] expected: Value) {
    assert_eq!(yaml::from_str(text).unwrap(), expected, "{text}");
}

#[test]
fn a_merge_key_takes_only_mappings() {
    let err = yaml::from_str("a: 1\nb:\n  <<: 3\n")
        .unwrap_err()
        .to_string();
    assert!(err.contains("merge key"), "{err}");
}

#[test]
fn documents_record_where_yaml11_words_were_read() {
    let text =
        "a: 1\n---\nspec:\n  users:\n  - name: u\n    password: yes\n  pmm:\n    enabled: Off\n";
    let docs = yaml::documents(text).unwrap();
    assert_eq!(docs.len(), 2);
    assert!(docs[0].yaml11_booleans.is_empty());
    assert_eq!(
        docs[1].yaml11_booleans,
        vec![
            Yaml11Boolean {
                path: "spec.users[0].password".into(),
                word: "yes".into()
            },
            Yaml11Boolean {
                path: "spec.pmm.enabled".into(),
                word: "Off".into()
            },
        ]
    );
    assert_eq!(docs[1].value["spec"]["pmm"]["enabled"], json!(false));
}

#[test]
fn explain_names_the_word_only_on_its_field() {
    let found = vec![Yaml11Boolean {
        path: "spec.image".into(),
        word: "on".into(),
    }];
    let line = "spec.image: invalid type: boolean `true`, expected a string";
    let explained = yaml::explain(line, &found);
    assert!(explained.starts_with(line), "{explained}");
    assert!(explained.contains("unquoted `on`"), "{explained}");
    assert!(explained.contains("\"on\""), "{explained}");
    let other = "spec.imagePullPolicy: unknown variant";
    assert_eq!(yaml::explain(other, &found), other);
}

#[test]
fn same_as_serde_yaml_without_yaml11_words() {
    let text =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../deploy/cr.yaml")).unwrap();
    let ours = yaml::from_str(&text).unwrap();
    let theirs: Value = serde_yaml::from_str(&text).unwrap();
    assert_eq!(ours, theirs);
}

#[test]
fn yaml_errors_still_surface() {
    assert!(yaml::from_str("a: [1, 2\nb: }").is_err());
    assert!(yaml::documents("a: 1\n---\nb: [").is_err());
}
