use super::*;
use arrow::array::Array;

fn fold(
    function: AggregateFn,
    types: &[DataType],
    literals: &[Option<ScalarValue>],
    values: &[ScalarValue],
) -> ScalarValue {
    let aggregator = Aggregator::new(function, types, literals).unwrap();
    let mut state = aggregator.initial();
    for v in values {
        // Through the store's encoding each time, as a stream thread does.
        let mut states = decode_states(&encode_states(&[state]).unwrap()).unwrap();
        state = states.remove(0);
        aggregator.add(&mut state, Some(v));
    }
    aggregator.result(&state, None).unwrap()
}

fn ints(values: &[Option<i32>]) -> Vec<ScalarValue> {
    values.iter().map(|v| ScalarValue::Int32(*v)).collect()
}

#[test]
fn count_sum_avg_skip_nulls_and_start_from_zero() {
    let values = ints(&[Some(1), None, Some(5)]);
    let int = [DataType::Int32];
    assert_eq!(
        fold(AggregateFn::Count, &int, &[None], &values),
        ScalarValue::Int64(Some(2))
    );
    assert_eq!(
        fold(AggregateFn::Sum, &int, &[None], &values),
        ScalarValue::Int32(Some(6))
    );
    assert_eq!(
        fold(AggregateFn::Sum, &int, &[None], &ints(&[None])),
        ScalarValue::Int32(Some(0))
    );
    assert_eq!(
        fold(AggregateFn::Avg, &int, &[None], &values),
        ScalarValue::Float64(Some(3.0))
    );
    // COUNT(*) counts every row.
    let star = Aggregator::new(AggregateFn::Count, &[], &[]).unwrap();
    let mut state = star.initial();
    star.add(&mut state, None);
    star.add(&mut state, None);
    assert_eq!(
        star.result(&state, None).unwrap(),
        ScalarValue::Int64(Some(2))
    );
}

#[test]
fn min_max_of_nothing_is_null_and_integers_wrap_like_java() {
    let int = [DataType::Int32];
    assert_eq!(
        fold(AggregateFn::Min, &int, &[None], &ints(&[None])),
        ScalarValue::Int32(None)
    );
    assert_eq!(
        fold(
            AggregateFn::Max,
            &int,
            &[None],
            &ints(&[Some(3), Some(9), Some(-1)])
        ),
        ScalarValue::Int32(Some(9))
    );
    assert_eq!(
        fold(
            AggregateFn::Sum,
            &int,
            &[None],
            &ints(&[Some(i32::MAX), Some(1)])
        ),
        ScalarValue::Int32(Some(i32::MIN))
    );
}

#[test]
fn topk_collections_and_by_offset() {
    let int = [DataType::Int32, DataType::Int32];
    let k2 = [None, Some(ScalarValue::Int32(Some(2)))];
    let values = ints(&[Some(3), Some(9), None, Some(9), Some(1)]);
    let list = |v: &[Option<i32>]| {
        ScalarValue::List(ScalarValue::new_list_nullable(&ints(v), &DataType::Int32))
    };
    assert_eq!(
        fold(AggregateFn::TopK, &int, &k2, &values),
        list(&[Some(9), Some(9)])
    );
    assert_eq!(
        fold(AggregateFn::TopKDistinct, &int, &k2, &values),
        list(&[Some(9), Some(3)])
    );
    let one = [DataType::Int32];
    assert_eq!(
        fold(AggregateFn::CollectList, &one, &[None], &values),
        list(&[Some(3), Some(9), None, Some(9), Some(1)])
    );
    assert_eq!(
        fold(AggregateFn::CollectSet, &one, &[None], &values),
        list(&[Some(3), Some(9), None, Some(1)])
    );
    assert_eq!(
        fold(
            AggregateFn::LatestByOffset,
            &one,
            &[None],
            &ints(&[Some(1), None])
        ),
        ScalarValue::Int32(Some(1)),
        "nulls are skipped by default"
    );
    let keep_nulls = [None, Some(ScalarValue::Boolean(Some(false)))];
    assert_eq!(
        fold(
            AggregateFn::LatestByOffset,
            &[DataType::Int32, DataType::Boolean],
            &keep_nulls,
            &ints(&[Some(1), None])
        ),
        ScalarValue::Int32(None)
    );
    assert_eq!(
        fold(AggregateFn::EarliestByOffset, &int, &k2, &values),
        list(&[Some(3), Some(9)])
    );
    assert_eq!(
        fold(
            AggregateFn::CountDistinct,
            &one,
            &[None],
            &ints(&[Some(1), Some(1), None, Some(2)])
        ),
        ScalarValue::Int64(Some(2))
    );
}

#[test]
fn histogram_counts_each_string() {
    let strings: Vec<ScalarValue> = ["a", "b", "a"]
        .iter()
        .map(|s| ScalarValue::Utf8(Some(s.to_string())))
        .collect();
    let result = fold(AggregateFn::Histogram, &[DataType::Utf8], &[None], &strings);
    let ScalarValue::Map(map) = result else {
        panic!("{result:?}");
    };
    assert_eq!(map.len(), 1);
    assert_eq!(map.value(0).len(), 2);
}

#[test]
fn arguments_are_checked_in_ksqldbs_words() {
    let err = AggregateFn::Sum.coerce(&[DataType::Utf8]).unwrap_err();
    assert_eq!(err, "Function 'SUM' does not accept parameters (STRING).");
    assert!(AggregateFn::TopK.coerce(&[DataType::Int32]).is_err());
    assert_eq!(
        AggregateFn::Sum.coerce(&[DataType::Int16]).unwrap(),
        vec![DataType::Int32]
    );
    assert!(Aggregator::new(
        AggregateFn::TopK,
        &[DataType::Int32, DataType::Int32],
        &[None, None]
    )
    .is_err());
}

#[test]
fn corrupt_states_are_errors() {
    assert!(decode_states(&[1, 9]).is_err());
    assert!(decode_states(&[]).is_err());
}

#[test]
fn count_distinct_is_exact_for_few_values_and_close_for_many() {
    let aggregator =
        Aggregator::new(AggregateFn::CountDistinct, &[DataType::Int64], &[None]).unwrap();
    let mut state = aggregator.initial();
    for i in 0..100_000i64 {
        aggregator.add(&mut state, Some(&ScalarValue::Int64(Some(i % 50_000))));
        if i == 999 {
            assert_eq!(
                aggregator.result(&state, None).unwrap(),
                ScalarValue::Int64(Some(1000))
            );
        }
    }
    assert!(matches!(state, State::Distinct(Distinct::Sketch(_))));
    let state = decode_states(&encode_states(&[state]).unwrap())
        .unwrap()
        .remove(0);
    let ScalarValue::Int64(Some(n)) = aggregator.result(&state, None).unwrap() else {
        panic!()
    };
    assert!((49_000..=51_000).contains(&n), "{n}");
}

#[test]
fn sessions_merge_as_if_the_later_ones_records_came_after() {
    let int = [DataType::Int32];
    let state_of = |function: AggregateFn,
                    types: &[DataType],
                    literals: &[Option<ScalarValue>],
                    values: &[Option<i32>]| {
        let aggregator = Aggregator::new(function, types, literals).unwrap();
        let mut state = aggregator.initial();
        for v in ints(values) {
            aggregator.add(&mut state, Some(&v));
        }
        (aggregator, state)
    };
    for (function, types, literals, expected) in [
        (
            AggregateFn::Sum,
            &int[..],
            vec![None],
            ScalarValue::Int32(Some(10)),
        ),
        (
            AggregateFn::Count,
            &int[..],
            vec![None],
            ScalarValue::Int64(Some(4)),
        ),
        (
            AggregateFn::Avg,
            &int[..],
            vec![None],
            ScalarValue::Float64(Some(2.5)),
        ),
        (
            AggregateFn::Min,
            &int[..],
            vec![None],
            ScalarValue::Int32(Some(1)),
        ),
        (
            AggregateFn::Max,
            &int[..],
            vec![None],
            ScalarValue::Int32(Some(4)),
        ),
        (
            AggregateFn::LatestByOffset,
            &int[..],
            vec![None],
            ScalarValue::Int32(Some(4)),
        ),
        (
            AggregateFn::EarliestByOffset,
            &int[..],
            vec![None],
            ScalarValue::Int32(Some(3)),
        ),
        (
            AggregateFn::CollectList,
            &int[..],
            vec![None],
            ScalarValue::List(ScalarValue::new_list_nullable(
                &ints(&[Some(3), Some(1), Some(2), Some(4)]),
                &DataType::Int32,
            )),
        ),
        (
            AggregateFn::CountDistinct,
            &int[..],
            vec![None],
            ScalarValue::Int64(Some(4)),
        ),
    ] {
        let (aggregator, a) = state_of(function, types, &literals, &[Some(3), Some(1)]);
        let (_, b) = state_of(function, types, &literals, &[Some(2), Some(4)]);
        let merged = aggregator.merge(a, b);
        assert_eq!(
            aggregator.result(&merged, None).unwrap(),
            expected,
            "{function:?}"
        );
    }
}

#[test]
fn table_aggregates_take_a_rows_value_back_out() {
    let int = [DataType::Int32];
    // Folds `add`, then undoes `undo`, and gives the result.
    let fold_undo = |function: AggregateFn, add: &[ScalarValue], undo: &[ScalarValue]| {
        let aggregator = Aggregator::new(function, &int, &[None]).unwrap();
        let mut state = aggregator.initial();
        add.iter().for_each(|v| aggregator.add(&mut state, Some(v)));
        undo.iter()
            .for_each(|v| aggregator.undo(&mut state, Some(v)));
        aggregator.result(&state, None).unwrap()
    };
    let added = ints(&[Some(1), Some(5), None, Some(5), Some(2)]);
    let undone = ints(&[Some(5), None]);
    assert_eq!(
        fold_undo(AggregateFn::Count, &added, &undone),
        ScalarValue::Int64(Some(3))
    );
    assert_eq!(
        fold_undo(AggregateFn::Sum, &added, &undone),
        ScalarValue::Int32(Some(8))
    );
    assert_eq!(
        fold_undo(AggregateFn::Avg, &added, &undone),
        ScalarValue::Float64(Some(8.0 / 3.0))
    );
    // COLLECT_LIST drops the last occurrence, and keeps nulls as values.
    let ScalarValue::List(list) = fold_undo(AggregateFn::CollectList, &added, &undone) else {
        panic!("not a list");
    };
    let values = list.value(0);
    let values = values
        .as_any()
        .downcast_ref::<arrow::array::Int32Array>()
        .unwrap();
    assert_eq!(
        values.iter().collect::<Vec<_>>(),
        vec![Some(1), Some(5), Some(2)]
    );
    // COUNT(*) counts every row down.
    let star = Aggregator::new(AggregateFn::Count, &[], &[]).unwrap();
    let mut state = star.initial();
    star.add(&mut state, None);
    star.add(&mut state, None);
    star.undo(&mut state, None);
    assert_eq!(
        star.result(&state, None).unwrap(),
        ScalarValue::Int64(Some(1))
    );
    // HISTOGRAM forgets a string counted down to zero.
    let strings = |values: &[&str]| -> Vec<ScalarValue> {
        values
            .iter()
            .map(|s| ScalarValue::Utf8(Some(s.to_string())))
            .collect()
    };
    let aggregator = Aggregator::new(AggregateFn::Histogram, &[DataType::Utf8], &[None]).unwrap();
    let mut state = aggregator.initial();
    strings(&["a", "b", "a"])
        .iter()
        .for_each(|v| aggregator.add(&mut state, Some(v)));
    strings(&["b", "a"])
        .iter()
        .for_each(|v| aggregator.undo(&mut state, Some(v)));
    assert_eq!(state, State::Histogram(vec![("a".to_string(), 1)]));
}
