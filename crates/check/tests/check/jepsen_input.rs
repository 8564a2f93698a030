//! Jepsen's EDN as it comes out of real tests: `jepsen.independent` tuples,
//! `#jepsen.history.Op{...}` records, and Elle `:txn` micro-ops.

use quorate_check::history::{parse, Format};
use quorate_check::linearizability::Limits;
use quorate_check::{check, list_append, Model, OpValue, Validity};

fn verdict(text: &str, model: Model) -> Validity {
    let ops = parse(text, Format::Auto).unwrap().pair().unwrap();
    check(model, &ops, &Limits::default()).unwrap().validity
}

#[test]
fn independent_tuples_are_keys_and_values() {
    // The standard register workload: every value is [key value]; cas is [key [old new]].
    let text = r#"[{:process 0, :type :invoke, :f :write, :value [1 3], :time 10}
 {:process 0, :type :ok, :f :write, :value [1 3], :time 20}
 {:process 1, :type :invoke, :f :cas, :value [2 [nil 4]], :time 21}
 {:process 1, :type :ok, :f :cas, :value [2 [nil 4]], :time 22}
 {:process 2, :type :invoke, :f :read, :value [1 nil], :time 30}
 {:process 2, :type :ok, :f :read, :value [1 3], :time 40}
 {:process 3, :type :invoke, :f :cas, :value [1 3], :time 50}
 {:process 3, :type :fail, :f :cas, :value [1 3], :time 60}]"#;
    let history = parse(text, Format::Auto).unwrap();
    let e = &history.events;
    assert_eq!(e[0].key.as_deref(), Some("1"));
    assert_eq!(e[0].value, OpValue::Put("3".into()));
    assert_eq!(e[2].key.as_deref(), Some("2"));
    assert_eq!(
        e[2].value,
        OpValue::Cas {
            expected: None,
            new: "4".into()
        }
    );
    assert_eq!(e[5].value, OpValue::Get(Some("3".into())));
    // A cas of two scalars is a plain (keyless) cas, as Knossos writes it.
    assert_eq!(e[6].key, None);
    assert_eq!(verdict(text, Model::Linearizable), Validity::Valid);
    // The same history with the read returning another key's value is not linearizable.
    let stale = text.replace(":value [1 3], :time 40", ":value [1 4], :time 40");
    assert_eq!(verdict(&stale, Model::Linearizable), Validity::Invalid);
}

#[test]
fn history_op_records_are_maps() {
    let text = "#jepsen.history.Op{:index 0, :time 5, :type :invoke, :process 0, :f :write, :value 1}\n\
                #jepsen.history.Op{:index 1, :time 6, :type :ok, :process 0, :f :write, :value 1}\n\
                #jepsen.history.Op{:index 2, :time 7, :type :info, :process :nemesis, :f :kill, :value nil}\n\
                #jepsen.history.Op{:index 3, :time 8, :type :invoke, :process 1, :f :read, :value nil}\n\
                #jepsen.history.Op{:index 4, :time 9, :type :ok, :process 1, :f :read, :value 2}\n";
    let history = parse(text, Format::Auto).unwrap();
    assert_eq!(history.events.len(), 4);
    assert_eq!(history.lines, vec![1, 2, 4, 5]);
    assert_eq!(history.events[3].time, 9);
    assert_eq!(verdict(text, Model::Linearizable), Validity::Invalid);
    let fixed = text.replace(":value 2}", ":value 1}");
    assert_eq!(verdict(&fixed, Model::Linearizable), Validity::Valid);
}

#[test]
fn single_micro_op_transactions_are_operations() {
    let registers = r#"[{:process 0, :type :invoke, :f :txn, :value [[:w :x 1]]}
 {:process 0, :type :ok, :f :txn, :value [[:w :x 1]]}
 {:process 1, :type :invoke, :f :txn, :value [[:r :x nil]]}
 {:process 1, :type :ok, :f :txn, :value [[:r :x 1]]}]"#;
    let history = parse(registers, Format::Auto).unwrap();
    assert_eq!(history.events[0].key.as_deref(), Some("x"));
    assert_eq!(history.events[0].value, OpValue::Put("1".into()));
    assert_eq!(verdict(registers, Model::Linearizable), Validity::Valid);

    let lists = r#"[{:process 0, :type :invoke, :f :txn, :value [[:append 7 1]]}
 {:process 0, :type :ok, :f :txn, :value [[:append 7 1]]}
 {:process 1, :type :invoke, :f :txn, :value [[:append 7 2]]}
 {:process 1, :type :ok, :f :txn, :value [[:append 7 2]]}
 {:process 2, :type :invoke, :f :txn, :value [[:r 7 nil]]}
 {:process 2, :type :ok, :f :txn, :value [[:r 7 [1 2]]]}]"#;
    let history = parse(lists, Format::Auto).unwrap();
    assert_eq!(history.events[0].value, OpValue::Append("1;".into()));
    assert_eq!(history.events[5].value, OpValue::Get(Some("1;2;".into())));
    let ops = history.pair().unwrap();
    assert!(list_append::is_list_append(&ops));
    assert_eq!(verdict(lists, Model::ListAppend), Validity::Valid);
    // The appends are strings to the register model too: "1;" then "2;" reads "1;2;".
    assert_eq!(verdict(lists, Model::Linearizable), Validity::Valid);
    let lost = lists.replace("[:r 7 [1 2]]]}]", "[:r 7 [2]]]}]");
    assert_eq!(verdict(&lost, Model::ListAppend), Validity::Invalid);
}

#[test]
fn multi_micro_op_transactions_name_the_model_that_checks_them() {
    let text = "[{:process 0, :type :invoke, :f :txn, :value [[:append 1 1] [:r 1 nil]]}]";
    let err = parse(text, Format::Auto).unwrap_err();
    assert!(err.message.contains("--model list-append"), "{err}");
}
