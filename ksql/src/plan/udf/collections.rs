//! ksqlDB's array and map functions (`ARRAY`, `MAP`) DataFusion has none alike for.
//!
//! Maps are ordered by first appearance of their keys (a Java `HashMap`'s order, which
//! ksqlDB's results have, is no part of their meaning); `ENTRIES(map, true)` sorts as Java.

use std::sync::Arc;

use arrow::array::{
    new_null_array, Array, ArrayRef, AsArray, BooleanArray, Int32Builder, MapArray, StringArray,
    StringBuilder, StructArray, UInt64Array,
};
use arrow::buffer::{NullBuffer, OffsetBuffer};
use arrow::datatypes::{
    DataType, Decimal128Type, Field, Fields, Float64Type, Int32Type, Int64Type,
};
use datafusion_common::{plan_err, DataFusionError, Result as DfResult};

use super::json::{big_decimal, java_compare, java_double};
use super::{
    each_row, list_of, map_entries, overloads, returns, sig, string_map_of, Call, KsqlUdf, Param,
};

pub(super) fn functions() -> Vec<KsqlUdf> {
    use Param::{Array as Arr, Boolean, Map, String as Str};
    vec![
        KsqlUdf::new(
            "ARRAY_LENGTH",
            "ARRAY_LENGTH",
            "ARRAY",
            "Returns the length on an array",
            overloads![sig(&[Arr])],
            returns!(DataType::Int32),
            array_length,
        ),
        KsqlUdf::new(
            "ARRAY_JOIN",
            "ARRAY_JOIN",
            "ARRAY",
            "joins the array elements into a flat string representation",
            overloads![sig(&[Arr]), sig(&[Arr, Str])],
            returns!(DataType::Utf8),
            array_join,
        ),
        KsqlUdf::new(
            "AS_MAP",
            "AS_MAP",
            "MAP",
            "Construct a list based on some inputs",
            overloads![sig(&[Arr, Arr])],
            |args| match args {
                [keys, values] => {
                    if !matches!(item_type(keys), Some(DataType::Utf8 | DataType::Null)) {
                        return plan_err!(
                            "Function 'AS_MAP' takes its keys as an ARRAY<STRING>, not {keys}"
                        );
                    }
                    Ok(string_map_of(item_type(values).unwrap_or(DataType::Null)))
                }
                _ => plan_err!("AS_MAP takes two arrays"),
            },
            as_map,
        ),
        KsqlUdf::new(
            "MAP_UNION",
            "map_union",
            "MAP",
            "Returns a new map containing the union of all entries from both input maps. If a key is present in both input maps then the value from map2 is the one which appears in the result. Returns NULL if all of the input maps are NULL.",
            overloads![sig(&[Map, Map])],
            |args| match args {
                [DataType::Map(a, _), DataType::Map(b, _)] => {
                    let (Some(a), Some(b)) = (string_map_value(a), string_map_value(b)) else {
                        return plan_err!("Function 'map_union' takes maps with STRING keys");
                    };
                    if a != b {
                        return plan_err!(
                            "Function 'map_union' takes two maps of the same type, not MAP<STRING, {a}> and MAP<STRING, {b}>"
                        );
                    }
                    Ok(string_map_of(a))
                }
                _ => plan_err!("Function 'map_union' takes two maps"),
            },
            map_union,
        ),
        KsqlUdf::new(
            "ENTRIES",
            "ENTRIES",
            "MAP",
            "Construct an array from the entries in a map.The array can be optionally sorted on the keys.",
            overloads![sig(&[Map, Boolean])],
            |args| match args {
                [DataType::Map(entries, _), _] => match string_map_value(entries) {
                    Some(
                        v @ (DataType::Int32
                        | DataType::Int64
                        | DataType::Float64
                        | DataType::Boolean
                        | DataType::Utf8),
                    ) => Ok(list_of(DataType::Struct(entry_fields(v)))),
                    _ => plan_err!(
                        "Function 'ENTRIES' takes a MAP<STRING, T> of INT, BIGINT, DOUBLE, BOOLEAN or STRING values"
                    ),
                },
                _ => plan_err!("Function 'ENTRIES' takes a map and a boolean"),
            },
            entries,
        ),
    ]
}

fn item_type(list: &DataType) -> Option<DataType> {
    match list {
        DataType::List(item) => Some(item.data_type().clone()),
        DataType::Null => Some(DataType::Null),
        _ => None,
    }
}

/// The value type of a map with `STRING` keys.
fn string_map_value(entries: &Field) -> Option<DataType> {
    match entries.data_type() {
        DataType::Struct(kv) if kv.len() == 2 && kv[0].data_type() == &DataType::Utf8 => {
            Some(kv[1].data_type().clone())
        }
        _ => None,
    }
}

fn entry_fields(value: DataType) -> Fields {
    vec![
        Field::new("K", DataType::Utf8, true),
        Field::new("V", value, true),
    ]
    .into()
}

fn internal(message: String) -> DataFusionError {
    DataFusionError::Internal(message)
}

fn array_length(call: &Call) -> DfResult<ArrayRef> {
    let arrays = &call.args[0];
    let mut out = Int32Builder::with_capacity(call.rows);
    if arrays.data_type() == &DataType::Null {
        out.append_nulls(call.rows);
    } else {
        let lists = arrays
            .as_list_opt::<i32>()
            .ok_or_else(|| internal(format!("ARRAY_LENGTH of a {}", arrays.data_type())))?;
        for row in 0..call.rows {
            if lists.is_null(row) {
                out.append_null();
            } else {
                let offsets = lists.value_offsets();
                out.append_value(offsets[row + 1] - offsets[row]);
            }
        }
    }
    Ok(Arc::new(out.finish()))
}

/// An element as Java's `toString()` writes it, for the types `ARRAY_JOIN` takes.
fn element_text(items: &dyn Array, at: usize) -> Result<String, String> {
    if super::is_null(items, at) {
        return Ok("null".to_string());
    }
    Ok(match items.data_type() {
        DataType::Boolean => items.as_boolean().value(at).to_string(),
        DataType::Int32 => items.as_primitive::<Int32Type>().value(at).to_string(),
        DataType::Int64 => items.as_primitive::<Int64Type>().value(at).to_string(),
        DataType::Float64 => java_double(items.as_primitive::<Float64Type>().value(at)),
        DataType::Decimal128(_, scale) => big_decimal(
            &items.as_primitive::<Decimal128Type>().value(at).to_string(),
            i64::from(*scale),
            false,
        ),
        DataType::Utf8 => items.as_string::<i32>().value(at).to_string(),
        other => {
            return Err(format!(
                "error: hit element of type {} which is currently not supported",
                crate::plan::sql_type(other).map_or_else(|| other.to_string(), |t| t.to_string())
            ))
        }
    })
}

fn array_join(call: &Call) -> DfResult<ArrayRef> {
    let arrays = &call.args[0];
    let delimiters = super::opt_arg::<StringArray>(call, 1)?;
    let mut out = StringBuilder::new();
    if arrays.data_type() == &DataType::Null {
        out.append_nulls(call.rows);
        return Ok(Arc::new(out.finish()));
    }
    let lists = arrays
        .as_list_opt::<i32>()
        .ok_or_else(|| internal(format!("ARRAY_JOIN of a {}", arrays.data_type())))?;
    each_row(
        call,
        |row| {
            if lists.is_null(row) {
                return Ok(None);
            }
            // A null delimiter joins with nothing.
            let delimiter = match delimiters {
                Some(d) if !d.is_null(row) => d.value(row),
                _ => match delimiters {
                    Some(_) => "",
                    None => ",",
                },
            };
            let items = lists.value(row);
            let texts = (0..items.len())
                .map(|i| element_text(items.as_ref(), i))
                .collect::<Result<Vec<_>, _>>()?;
            Ok(Some(texts.join(delimiter)))
        },
        |v| out.append_option(v),
    );
    Ok(Arc::new(out.finish()))
}

/// A `MAP<STRING, V>` from each row's entries: a key and the index of its value in
/// `values` (none for a null value); `None` rows are null maps.
/// A row of a map being built: its keys and the indices of their values (`None`: a null
/// map).
type MapRow = Option<Vec<(String, Option<u64>)>>;

fn build_map(values: &ArrayRef, rows: Vec<MapRow>) -> DfResult<ArrayRef> {
    let value_type = values.data_type().clone();
    let mut keys = StringBuilder::new();
    let mut indices: Vec<Option<u64>> = Vec::new();
    let mut lengths = Vec::with_capacity(rows.len());
    let mut valid = Vec::with_capacity(rows.len());
    for row in &rows {
        match row {
            Some(entries) => {
                for (key, index) in entries {
                    keys.append_value(key);
                    indices.push(*index);
                }
                lengths.push(entries.len());
                valid.push(true);
            }
            None => {
                lengths.push(0);
                valid.push(false);
            }
        }
    }
    let taken = if value_type == DataType::Null {
        new_null_array(&DataType::Null, indices.len())
    } else {
        arrow::compute::take(values.as_ref(), &UInt64Array::from(indices), None)?
    };
    let entries_field = map_entries(value_type);
    let DataType::Struct(kv) = entries_field.data_type() else {
        return datafusion_common::internal_err!("map entries are a struct");
    };
    let entries = StructArray::try_new(kv.clone(), vec![Arc::new(keys.finish()), taken], None)?;
    let map = MapArray::try_new(
        entries_field,
        OffsetBuffer::from_lengths(lengths),
        entries,
        Some(NullBuffer::from(valid)),
        false,
    )?;
    Ok(Arc::new(map))
}

/// Sets `key` to `value` (a repeated key keeps its place and takes the new value).
fn put(entries: &mut Vec<(String, Option<u64>)>, key: &str, value: Option<u64>) {
    match entries.iter_mut().find(|(k, _)| k == key) {
        Some(entry) => entry.1 = value,
        None => entries.push((key.to_string(), value)),
    }
}

/// `AS_MAP(keys, values)`: the i-th key to the i-th value (null past the values' end).
fn as_map(call: &Call) -> DfResult<ArrayRef> {
    let (keys, values) = (&call.args[0], &call.args[1]);
    let value_type = match call.return_type {
        DataType::Map(entries, _) => string_map_value(entries).unwrap_or(DataType::Null),
        _ => DataType::Null,
    };
    if keys.data_type() == &DataType::Null || values.data_type() == &DataType::Null {
        return build_map(
            &new_null_array(&value_type, 0),
            (0..call.rows).map(|_| None).collect(),
        );
    }
    let (Some(key_lists), Some(value_lists)) =
        (keys.as_list_opt::<i32>(), values.as_list_opt::<i32>())
    else {
        return datafusion_common::internal_err!("AS_MAP of arrays");
    };
    let key_items = key_lists.values();
    let key_strings = key_items.as_string_opt::<i32>();
    let value_items = value_lists.values();
    let mut rows = Vec::with_capacity(call.rows);
    for row in 0..call.rows {
        if key_lists.is_null(row) || value_lists.is_null(row) {
            rows.push(None);
            continue;
        }
        let (key_offsets, value_offsets) = (key_lists.value_offsets(), value_lists.value_offsets());
        let (key_start, key_end) = (key_offsets[row] as usize, key_offsets[row + 1] as usize);
        let (value_start, value_end) =
            (value_offsets[row] as usize, value_offsets[row + 1] as usize);
        let mut entries = Vec::new();
        let mut failed = false;
        for (i, at) in (key_start..key_end).enumerate() {
            let Some(key) = key_strings.filter(|k| !k.is_null(at)).map(|k| k.value(at)) else {
                // A map of ksql cannot hold a null key.
                call.failed("AS_MAP: a null key");
                failed = true;
                break;
            };
            let value_at = value_start + i;
            let index =
                (value_at < value_end && !value_items.is_null(value_at)).then_some(value_at as u64);
            put(&mut entries, key, index);
        }
        rows.push((!failed).then_some(entries));
    }
    build_map(value_items, rows)
}

/// `MAP_UNION(map1, map2)`: the second's values win; null only if both are.
fn map_union(call: &Call) -> DfResult<ArrayRef> {
    let value_type = match call.return_type {
        DataType::Map(entries, _) => string_map_value(entries).unwrap_or(DataType::Null),
        _ => DataType::Null,
    };
    let maps: Vec<Option<&MapArray>> = call.args.iter().map(|a| a.as_map_opt()).collect();
    // Both maps' values, one after the other.
    let children: Vec<ArrayRef> = maps
        .iter()
        .map(|m| match m {
            Some(m) => m.values().clone(),
            None => new_null_array(&value_type, 0),
        })
        .collect();
    let child_refs: Vec<&dyn Array> = children.iter().map(|c| c.as_ref()).collect();
    let values = arrow::compute::concat(&child_refs)?;
    let mut rows = Vec::with_capacity(call.rows);
    for row in 0..call.rows {
        let mut entries = Vec::new();
        let mut any = false;
        let mut base = 0u64;
        for (map, child) in maps.iter().zip(&children) {
            if let Some(map) = map.filter(|m| !m.is_null(row)) {
                any = true;
                let offsets = map.value_offsets();
                let keys = map.keys().as_string_opt::<i32>();
                for at in offsets[row] as usize..offsets[row + 1] as usize {
                    let Some(key) = keys.map(|k| k.value(at)) else {
                        continue;
                    };
                    let index = (!child.is_null(at)).then_some(base + at as u64);
                    put(&mut entries, key, index);
                }
            }
            base += child.len() as u64;
        }
        rows.push(any.then_some(entries));
    }
    build_map(&values, rows)
}

/// `ENTRIES(map, sorted)`: the entries as `STRUCT<K, V>`s.
fn entries(call: &Call) -> DfResult<ArrayRef> {
    let DataType::List(item) = call.return_type else {
        return datafusion_common::internal_err!("ENTRIES returns an array");
    };
    let DataType::Struct(fields) = item.data_type() else {
        return datafusion_common::internal_err!("ENTRIES returns structs");
    };
    let maps = call.args[0].as_map_opt();
    let sorted = call.args[1].as_boolean_opt();
    let value_type = fields[1].data_type().clone();
    let mut keys = StringBuilder::new();
    let mut indices: Vec<Option<u64>> = Vec::new();
    let mut lengths = Vec::with_capacity(call.rows);
    let mut valid = Vec::with_capacity(call.rows);
    for row in 0..call.rows {
        let map = maps.filter(|m| !m.is_null(row));
        let sort = sorted
            .filter(|s: &&BooleanArray| !s.is_null(row))
            .map(|s| s.value(row));
        // `sorted` is a Java boolean: a null one fails the call.
        let (Some(map), Some(sort)) = (map, sort) else {
            if map.is_some() {
                call.failed("ENTRIES: a null 'sorted'");
            }
            lengths.push(0);
            valid.push(false);
            continue;
        };
        let offsets = map.value_offsets();
        let map_keys = map.keys().as_string_opt::<i32>();
        let mut pairs: Vec<(&str, usize)> = (offsets[row] as usize..offsets[row + 1] as usize)
            .filter_map(|at| map_keys.map(|k| (k.value(at), at)))
            .collect();
        if sort {
            pairs.sort_by(|a, b| java_compare(a.0, b.0));
        }
        for (key, at) in &pairs {
            keys.append_value(key);
            indices.push((!map.values().is_null(*at)).then_some(*at as u64));
        }
        lengths.push(pairs.len());
        valid.push(true);
    }
    let values = match maps {
        Some(m) => arrow::compute::take(m.values().as_ref(), &UInt64Array::from(indices), None)?,
        None => new_null_array(&value_type, indices.len()),
    };
    let structs =
        StructArray::try_new(fields.clone(), vec![Arc::new(keys.finish()), values], None)?;
    let list = arrow::array::ListArray::try_new(
        item.clone(),
        OffsetBuffer::from_lengths(lengths),
        Arc::new(structs),
        Some(NullBuffer::from(valid)),
    )?;
    Ok(Arc::new(list))
}

#[cfg(test)]
mod tests {
    use super::*;
    use arrow::array::{Int32Array, ListArray};
    use arrow::datatypes::Int32Type as I32;

    fn call<'a>(args: Vec<ArrayRef>, rows: usize, return_type: &'a DataType) -> Call<'a> {
        Call {
            args,
            rows,
            return_type,
            name: "TEST",
        }
    }

    fn map_pairs(map: &MapArray, row: usize) -> Vec<(String, Option<i32>)> {
        let entries = map.value(row);
        let keys = entries.column(0).as_string::<i32>();
        let values = entries.column(1).as_primitive::<I32>();
        (0..keys.len())
            .map(|i| {
                (
                    keys.value(i).to_string(),
                    (!values.is_null(i)).then(|| values.value(i)),
                )
            })
            .collect()
    }

    #[test]
    fn as_map_pairs_keys_with_values() {
        let mut builder = arrow::array::ListBuilder::new(StringBuilder::new());
        for key in ["a", "b", "a"] {
            builder.values().append_value(key);
        }
        builder.append(true);
        builder.append(false);
        let keys: ArrayRef = Arc::new(builder.finish());
        let values: ArrayRef = Arc::new(ListArray::from_iter_primitive::<I32, _, _>(vec![
            Some(vec![Some(1), Some(2)]),
            Some(vec![Some(3)]),
        ]));
        let ty = string_map_of(DataType::Int32);
        let out = as_map(&call(vec![keys, values], 2, &ty)).unwrap();
        assert_eq!(out.data_type(), &ty);
        let out = out.as_map();
        assert_eq!(
            map_pairs(out, 0),
            [("a".to_string(), None), ("b".to_string(), Some(2))]
        );
        assert!(out.is_null(1));
    }

    #[test]
    fn array_join_as_java_writes_elements() {
        let arrays: ArrayRef = Arc::new(ListArray::from_iter_primitive::<I32, _, _>(vec![
            Some(vec![Some(1), None, Some(-42)]),
            None,
        ]));
        let out = array_join(&call(vec![arrays.clone()], 2, &DataType::Utf8)).unwrap();
        let out = out.as_string::<i32>();
        assert_eq!(out.value(0), "1,null,-42");
        assert!(out.is_null(1));
        let delimiters: ArrayRef = Arc::new(StringArray::from(vec![None::<&str>, None]));
        let out = array_join(&call(vec![arrays, delimiters], 2, &DataType::Utf8)).unwrap();
        assert_eq!(out.as_string::<i32>().value(0), "1null-42");
        let lengths: ArrayRef = Arc::new(ListArray::from_iter_primitive::<I32, _, _>(vec![
            Some(vec![Some(1), Some(2)]),
            None,
        ]));
        let out = array_length(&call(vec![lengths], 2, &DataType::Int32)).unwrap();
        let out: &Int32Array = out.as_primitive::<I32>();
        assert_eq!(out.value(0), 2);
        assert!(out.is_null(1));
    }
}
