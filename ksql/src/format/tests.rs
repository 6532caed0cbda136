use std::sync::Arc;

use arrow::array::{
    Array, ArrayRef, BinaryBuilder, BooleanBuilder, Date32Builder, Decimal128Builder,
    Float64Builder, Int32Builder, Int64Builder, MapBuilder, MapFieldNames, StringBuilder,
    Time32MillisecondBuilder, TimestampMillisecondBuilder,
};
use arrow::datatypes::{DataType, Field, Fields, TimeUnit};
use arrow::util::display::{ArrayFormatter, FormatOptions};
use proptest::prelude::*;

use super::*;
use crate::error::KsqlError;
use crate::metastore::Format;
use crate::parser::ast::SqlType;

/// Columns of a test: names and types.
type Spec = Vec<(&'static str, SqlType)>;

fn columns(spec: &[(&str, SqlType)]) -> Vec<(String, SqlType)> {
    spec.iter()
        .map(|(name, ty)| (name.to_string(), ty.clone()))
        .collect()
}

fn dec(precision: u32, scale: u32) -> SqlType {
    SqlType::Decimal { precision, scale }
}

fn array_of(ty: SqlType) -> SqlType {
    SqlType::Array(Box::new(ty))
}

fn map_of(key: SqlType, value: SqlType) -> SqlType {
    SqlType::Map(Box::new(key), Box::new(value))
}

fn struct_of(fields: &[(&str, SqlType)]) -> SqlType {
    SqlType::Struct(columns(fields))
}

fn unwrapped() -> SerdeOptions {
    SerdeOptions {
        wrap_single_value: false,
        ..SerdeOptions::default()
    }
}

fn show(array: &dyn Array, row: usize) -> String {
    let options = FormatOptions::default().with_null("null");
    let formatter = ArrayFormatter::try_new(array, &options).unwrap();
    formatter.value(row).to_string()
}

/// Decodes one record; each column's value as text.
fn decode_row(
    format: Format,
    spec: &[(&str, SqlType)],
    options: SerdeOptions,
    is_key: bool,
    bytes: Option<&[u8]>,
) -> Result<Vec<String>> {
    let mut decoder = RowDecoder::new(format, &columns(spec), options, is_key).unwrap();
    decoder.append(bytes)?;
    assert_eq!(decoder.len(), 1);
    let arrays = decoder.finish();
    assert_eq!(decoder.len(), 0);
    for (array, (_, ty)) in arrays.iter().zip(spec) {
        assert_eq!(array.len(), 1);
        assert_eq!(array.data_type(), &arrow_type(ty).unwrap());
    }
    Ok(arrays.iter().map(|a| show(a.as_ref(), 0)).collect())
}

fn json_value(spec: &[(&str, SqlType)], text: &str) -> Result<Vec<String>> {
    decode_row(
        Format::Json,
        spec,
        SerdeOptions::default(),
        false,
        Some(text.as_bytes()),
    )
}

fn serde_message(result: Result<Vec<String>>) -> String {
    match result {
        Err(KsqlError::Serde(message)) => message,
        other => panic!("expected a serde error, got {other:?}"),
    }
}

fn statement_message<T: std::fmt::Debug>(result: Result<T>) -> String {
    match result {
        Err(KsqlError::Statement(message)) => message,
        other => panic!("expected a statement error, got {other:?}"),
    }
}

#[test]
fn arrow_types() {
    let cases: Vec<(SqlType, DataType)> = vec![
        (SqlType::Boolean, DataType::Boolean),
        (SqlType::Int, DataType::Int32),
        (SqlType::Bigint, DataType::Int64),
        (SqlType::Double, DataType::Float64),
        (dec(10, 2), DataType::Decimal128(10, 2)),
        (SqlType::String, DataType::Utf8),
        (SqlType::Bytes, DataType::Binary),
        (SqlType::Date, DataType::Date32),
        (SqlType::Time, DataType::Time32(TimeUnit::Millisecond)),
        (
            SqlType::Timestamp,
            DataType::Timestamp(TimeUnit::Millisecond, None),
        ),
        (
            array_of(SqlType::Int),
            DataType::List(Arc::new(Field::new("item", DataType::Int32, true))),
        ),
        (
            map_of(SqlType::String, SqlType::Double),
            DataType::Map(
                Arc::new(Field::new(
                    "entries",
                    DataType::Struct(Fields::from(vec![
                        Field::new("key", DataType::Utf8, false),
                        Field::new("value", DataType::Float64, true),
                    ])),
                    false,
                )),
                false,
            ),
        ),
        (
            struct_of(&[("a", SqlType::Int), ("B", SqlType::String)]),
            DataType::Struct(Fields::from(vec![
                Field::new("a", DataType::Int32, true),
                Field::new("B", DataType::Utf8, true),
            ])),
        ),
    ];
    for (ty, expected) in cases {
        assert_eq!(arrow_type(&ty).unwrap(), expected, "{ty}");
    }
    assert!(matches!(
        arrow_type(&SqlType::Named("ADDRESS".into())),
        Err(KsqlError::Statement(_))
    ));
    assert!(matches!(
        arrow_type(&dec(39, 2)),
        Err(KsqlError::Statement(_))
    ));
}

#[test]
fn json_values_decode() {
    use SqlType::*;
    let orders = [("ID", Int), ("NAME", String), ("AMOUNT", Double)];
    let cases: Vec<(Spec, &str, Vec<&str>)> = vec![
        (
            orders.to_vec(),
            r#"{"ID":1,"NAME":"a","AMOUNT":1.5}"#,
            vec!["1", "a", "1.5"],
        ),
        // Case-insensitive, fields not in the schema ignored, missing fields null.
        (
            orders.to_vec(),
            r#" { "x" : {"a":[1,2,{"b":null}],"c":"\u00e9"}, "id" : 7 , "Name":"b\n\"c\"" } "#,
            vec!["7", "b\n\"c\"", "null"],
        ),
        (
            orders.to_vec(),
            r#"{"ID":null,"NAME":null,"AMOUNT":null}"#,
            vec!["null", "null", "null"],
        ),
        (orders.to_vec(), "{}", vec!["null", "null", "null"]),
        (orders.to_vec(), "null", vec!["null", "null", "null"]),
        (orders.to_vec(), "  ", vec!["null", "null", "null"]),
        // An exact match wins over an upper-cased one, whatever the order.
        (
            orders.to_vec(),
            r#"{"NAME":"exact","name":"upper"}"#,
            vec!["null", "exact", "null"],
        ),
        (
            orders.to_vec(),
            r#"{"name":"upper","NAME":"exact"}"#,
            vec!["null", "exact", "null"],
        ),
        // The last of equal fields wins.
        (
            orders.to_vec(),
            r#"{"NAME":"x","NAME":"z","name":"y"}"#,
            vec!["null", "z", "null"],
        ),
        (
            orders.to_vec(),
            r#"{"name":"x","Name":"y"}"#,
            vec!["null", "y", "null"],
        ),
        // Coercions.
        (
            orders.to_vec(),
            r#"{"ID":"42","NAME":123,"AMOUNT":"2.5"}"#,
            vec!["42", "123", "2.5"],
        ),
        (
            orders.to_vec(),
            r#"{"ID":-3,"NAME":true,"AMOUNT":3}"#,
            vec!["-3", "true", "3.0"],
        ),
        (
            orders.to_vec(),
            r#"{"NAME":12.50}"#,
            vec!["null", "12.50", "null"],
        ),
        (
            orders.to_vec(),
            r#"{"NAME":{"a": [1, "x" , null], "b":{}}}"#,
            vec!["null", r#"{"a":[1,"x",null],"b":{}}"#, "null"],
        ),
        (
            orders.to_vec(),
            r#"{"NAME":[ ]}"#,
            vec!["null", "[]", "null"],
        ),
        (
            orders.to_vec(),
            r#"{"AMOUNT":"NaN"}"#,
            vec!["null", "null", "NaN"],
        ),
        (
            orders.to_vec(),
            r#"{"AMOUNT":"-Infinity"}"#,
            vec!["null", "null", "-inf"],
        ),
        (
            orders.to_vec(),
            r#"{"AMOUNT":1e3}"#,
            vec!["null", "null", "1000.0"],
        ),
        (vec![("B", Boolean)], r#"{"B":true}"#, vec!["true"]),
        (vec![("B", Boolean)], r#"{"B":"TRUE"}"#, vec!["true"]),
        (vec![("B", Boolean)], r#"{"B":"false"}"#, vec!["false"]),
        (
            vec![("L", Bigint)],
            r#"{"L":-9223372036854775808}"#,
            vec!["-9223372036854775808"],
        ),
        (
            vec![("L", Bigint)],
            r#"{"L":"9223372036854775807"}"#,
            vec!["9223372036854775807"],
        ),
        (vec![("D", dec(5, 2))], r#"{"D":12.3}"#, vec!["12.30"]),
        (vec![("D", dec(5, 2))], r#"{"D":"-0.05"}"#, vec!["-0.05"]),
        (vec![("D", dec(5, 2))], r#"{"D":1.2e2}"#, vec!["120.00"]),
        (vec![("D", dec(5, 2))], r#"{"D":999.990}"#, vec!["999.99"]),
        (
            vec![("D", dec(38, 0))],
            r#"{"D":12345678901234567890123456789012345678}"#,
            vec!["12345678901234567890123456789012345678"],
        ),
        (
            vec![("D", dec(20, 10))],
            r#"{"D":0.1234567891}"#,
            vec!["0.1234567891"],
        ),
        (vec![("Y", Bytes)], r#"{"Y":"AQID"}"#, vec!["010203"]),
        (vec![("Y", Bytes)], r#"{"Y":"AQI"}"#, vec!["0102"]),
        (vec![("T", Date)], r#"{"T":18262}"#, vec!["2020-01-01"]),
        (vec![("T", Time)], r#"{"T":3723004}"#, vec!["01:02:03.004"]),
        (
            vec![("T", Timestamp)],
            r#"{"T":1577836800000}"#,
            vec!["2020-01-01T00:00:00"],
        ),
        (
            vec![("T", Timestamp)],
            r#"{"T":"1577836800001"}"#,
            vec!["2020-01-01T00:00:00.001"],
        ),
        // Nested types.
        (
            vec![("ITEMS", array_of(struct_of(&[("A", Int), ("B", String)])))],
            r#"{"items":[{"a":1,"B":"x"},null,{"A":2,"c":[1]},{}]}"#,
            vec!["[{A: 1, B: x}, null, {A: 2, B: null}, {A: null, B: null}]"],
        ),
        (
            vec![("M", map_of(String, array_of(Int)))],
            r#"{"M":{"k":[1,2],"j":null,"e":[]}}"#,
            vec!["{k: [1, 2], j: null, e: []}"],
        ),
        (
            vec![("M", map_of(Int, dec(4, 1)))],
            r#"{"M":{"1":"2.5","-7":3}}"#,
            vec!["{1: 2.5, -7: 3.0}"],
        ),
        (
            vec![(
                "S",
                struct_of(&[
                    ("IN", struct_of(&[("X", Bigint)])),
                    ("L", array_of(Boolean)),
                ]),
            )],
            r#"{"S":{"in":{"x":5},"l":[true,null,"false"]}}"#,
            vec!["{IN: {X: 5}, L: [true, null, false]}"],
        ),
        (vec![("A", array_of(Double))], r#"{"A":null}"#, vec!["null"]),
        // A quoted (lower-case) column is matched exactly only: ksqlDB upper-cases the JSON
        // field names, not the column names.
        (vec![("name", String)], r#"{"NAME":"a"}"#, vec!["null"]),
        (vec![("name", String)], r#"{"name":"a"}"#, vec!["a"]),
        // Column names differing only in case: one field can feed both.
        (vec![("a", Int), ("A", Int)], r#"{"a":1}"#, vec!["1", "1"]),
        (
            vec![("a", Int), ("A", Int)],
            r#"{"a":1,"A":2}"#,
            vec!["1", "2"],
        ),
        (
            vec![("a", Int), ("A", Int)],
            r#"{"A":2,"a":1}"#,
            vec!["1", "2"],
        ),
    ];
    for (spec, text, expected) in cases {
        let got = json_value(&spec, text).unwrap_or_else(|e| panic!("{text}: {e}"));
        assert_eq!(got, expected, "{text}");
    }
}

#[test]
fn json_single_values() {
    use SqlType::*;
    let cases: Vec<(SqlType, SerdeOptions, bool, &str, &str)> = vec![
        (Int, unwrapped(), false, "5", "5"),
        (Int, unwrapped(), false, "null", "null"),
        (String, unwrapped(), false, r#""abc""#, "abc"),
        (String, unwrapped(), false, r#"{"A":1}"#, r#"{"A":1}"#),
        (Int, SerdeOptions::default(), false, r#"{"V":5}"#, "5"),
        // Keys of one column are always bare, whatever WRAP_SINGLE_VALUE says.
        (String, SerdeOptions::default(), true, r#""k1""#, "k1"),
        (Bigint, SerdeOptions::default(), true, "12", "12"),
        (
            array_of(Int),
            SerdeOptions::default(),
            true,
            "[1,2]",
            "[1, 2]",
        ),
        (
            struct_of(&[("A", Int)]),
            SerdeOptions::default(),
            true,
            r#"{"a":3}"#,
            "{A: 3}",
        ),
    ];
    for (ty, options, is_key, text, expected) in cases {
        let got = decode_row(
            Format::Json,
            &[("V", ty)],
            options,
            is_key,
            Some(text.as_bytes()),
        )
        .unwrap_or_else(|e| panic!("{text}: {e}"));
        assert_eq!(got, vec![expected], "{text}");
    }
    // A key of several columns is an object.
    let got = decode_row(
        Format::Json,
        &[("K1", Int), ("K2", String)],
        SerdeOptions::default(),
        true,
        Some(br#"{"K1":1,"k2":"x"}"#),
    )
    .unwrap();
    assert_eq!(got, vec!["1", "x"]);
}

#[test]
fn json_errors() {
    use SqlType::*;
    let cases: Vec<(Spec, &str, &str)> = vec![
        (vec![("ID", Int)], r#"{"ID":"abc"}"#, "Can't coerce string to type. targetType: INTEGER, path: $.ID"),
        (vec![("ID", Int)], r#"{"ID":1.5}"#, "Can't convert type. sourceType: DoubleNode, requiredType: INTEGER, path: $.ID"),
        (vec![("ID", Int)], r#"{"ID":3000000000}"#, "Can't convert type. sourceType: LongNode, requiredType: INTEGER, path: $.ID"),
        (vec![("ID", Bigint)], r#"{"ID":9223372036854775808}"#, "Can't convert type. sourceType: BigIntegerNode, requiredType: BIGINT, path: $.ID"),
        (vec![("ID", Int)], r#"{"ID":true}"#, "Can't convert type. sourceType: BooleanNode, requiredType: INTEGER, path: $.ID"),
        (vec![("ID", Int)], r#"{"ID":[1]}"#, "Can't convert type. sourceType: ArrayNode, requiredType: INTEGER, path: $.ID"),
        (vec![("B", Boolean)], r#"{"B":1}"#, "Can't convert type. sourceType: IntNode, requiredType: BOOLEAN, path: $.B"),
        (vec![("B", Boolean)], r#"{"B":"yes"}"#, "Can't coerce string to type. targetType: BOOLEAN, path: $.B"),
        (vec![("D", Double)], r#"{"D":"x"}"#, "Can't coerce string to type. targetType: DOUBLE, path: $.D"),
        (vec![("D", Double)], r#"{"D":{}}"#, "Can't convert type. sourceType: ObjectNode, requiredType: DOUBLE, path: $.D"),
        (vec![("A", array_of(Int))], r#"{"A":"x"}"#, "Can't convert type. sourceType: TextNode, requiredType: ARRAY, path: $.A"),
        (vec![("A", array_of(Int))], r#"{"A":{}}"#, "Can't convert type. sourceType: ObjectNode, requiredType: ARRAY, path: $.A"),
        (vec![("M", map_of(String, Int))], r#"{"M":[]}"#, "Can't convert type. sourceType: ArrayNode, requiredType: MAP, path: $.M"),
        (vec![("M", map_of(Int, Int))], r#"{"M":{"x":1}}"#, "Can't coerce string to type. targetType: INTEGER, path: $.M"),
        (vec![("M", map_of(String, Int))], r#"{"M":{"k":"v"}}"#, "Can't coerce string to type. targetType: INTEGER, path: $.M.k"),
        (vec![("S", struct_of(&[("A", Int)]))], r#"{"S":5}"#, "Can't convert type. sourceType: IntNode, requiredType: STRUCT, path: $.S"),
        (vec![("ITEMS", array_of(struct_of(&[("A", Int)])))],
            r#"{"ITEMS":[{"A":1},{"a":"z"}]}"#,
            "Can't coerce string to type. targetType: INTEGER, path: $.ITEMS[1].A",
        ),
        (vec![("Y", Bytes)], r#"{"Y":"not base64!"}"#, "Can't coerce string to type. targetType: BYTES, path: $.Y"),
        (vec![("Y", Bytes)], r#"{"Y":12}"#, "Can't convert type. sourceType: IntNode, requiredType: BYTES, path: $.Y"),
        (vec![("T", Timestamp)], r#"{"T":"2020-01-01"}"#, "Can't coerce string to type. targetType: TIMESTAMP, path: $.T"),
        (vec![("T", Date)], r#"{"T":1.5}"#, "Can't convert type. sourceType: DoubleNode, requiredType: DATE, path: $.T"),
        (vec![("D", dec(4, 2))],
            r#"{"D":100}"#,
            "Numeric field overflow: A field with precision 4 and scale 2 must round to an absolute value less than 10^2. Got 100, path: $.D",
        ),
        (vec![("D", dec(4, 2))],
            r#"{"D":"1.234"}"#,
            "Cannot fit decimal '1.234' into DECIMAL(4, 2) without rounding. (Requires 4,3), path: $.D",
        ),
        (vec![("D", dec(4, 2))], r#"{"D":true}"#, "Can't convert type. sourceType: BooleanNode, requiredType: DECIMAL, path: $.D"),
        (vec![("D", dec(4, 2))], r#"{"D":"1.2.3"}"#, "Can't coerce string to type. targetType: DECIMAL, path: $.D"),
        // Not an object where one is needed.
        (vec![("ID", Int), ("N", String)], "[1,2]", "Can't convert type. sourceType: ArrayNode, requiredType: STRUCT, path: $"),
        (vec![("ID", Int)], "5", "Can't convert type. sourceType: IntNode, requiredType: STRUCT, path: $"),
        (vec![("ID", Int)], r#""x""#, "Can't convert type. sourceType: TextNode, requiredType: STRUCT, path: $"),
        // Not JSON.
        (vec![("ID", Int)], r#"{"ID":1"#, "Invalid JSON"),
        (vec![("ID", Int)], r#"{"ID":1} x"#, "unexpected data after the end of the JSON value"),
        (vec![("ID", Int)], r#"{ID:1}"#, "expected a field name"),
        (vec![("ID", Int)], r#"{"ID":01}"#, "leading zeroes"),
        (vec![("ID", Int)], r#"{"X":tru}"#, "unrecognized token"),
        (vec![("ID", Int)], "{\"X\":\"a\tb\"}", "control character"),
        (vec![("ID", Int)], r#"{"X":"\ud800"}"#, "surrogate"),
        (vec![("ID", Int)], r#"{"X":"\q"}"#, "unrecognized character escape"),
        (vec![("ID", Int)], r#"{"X":1,}"#, "expected a field name"),
        (vec![("ID", Int)], r#"{"X":[1,]}"#, "expected a JSON value"),
    ];
    for (spec, text, expected) in cases {
        let message = serde_message(json_value(&spec, text));
        assert!(
            message.contains(expected),
            "{text}: expected {expected:?} in {message:?}"
        );
    }
    // Invalid UTF-8 in a string.
    let message = serde_message(decode_row(
        Format::Json,
        &[("N", String)],
        SerdeOptions::default(),
        false,
        Some(b"{\"N\":\"\xff\"}"),
    ));
    assert!(message.contains("invalid UTF-8"), "{message}");
    // Nesting beyond the parser's limit is an error, not a stack overflow.
    let deep = format!("{{\"X\":{}{}}}", "[".repeat(100_000), "]".repeat(100_000));
    let message = serde_message(json_value(&[("ID", Int)], &deep));
    assert!(message.contains("nested deeper"), "{message}");
}

#[test]
fn json_escapes_decode() {
    let got = json_value(
        &[("S", SqlType::String)],
        r#"{"S":"a\"b\\c\/d\b\f\n\r\t\u0041\u00e9\ud83d\ude00 é"}"#,
    )
    .unwrap();
    assert_eq!(got, vec!["a\"b\\c/d\u{8}\u{c}\n\r\tAé😀 é"]);
    let got = json_value(&[("ID", SqlType::Int)], "\u{feff}{\"ID\":5}").unwrap();
    assert_eq!(got, vec!["5"]);
    // Escaped field names are matched after unescaping.
    let got = json_value(&[("ID", SqlType::Int)], r#"{"\u0049D":4}"#).unwrap();
    assert_eq!(got, vec!["4"]);
}

#[test]
fn kafka_format() {
    use SqlType::*;
    let ok: Vec<(SqlType, Vec<u8>, &str)> = vec![
        (Int, 258i32.to_be_bytes().to_vec(), "258"),
        (Int, (-1i32).to_be_bytes().to_vec(), "-1"),
        (Bigint, (1i64 << 40).to_be_bytes().to_vec(), "1099511627776"),
        (Double, 1.5f64.to_be_bytes().to_vec(), "1.5"),
        (String, "héllo".as_bytes().to_vec(), "héllo"),
        (String, vec![], ""),
        (Bytes, vec![0, 255], "00ff"),
    ];
    for (ty, bytes, expected) in ok {
        for is_key in [true, false] {
            let got = decode_row(
                Format::Kafka,
                &[("K", ty.clone())],
                SerdeOptions::default(),
                is_key,
                Some(&bytes),
            )
            .unwrap();
            assert_eq!(got, vec![expected], "{ty}");
        }
    }
    let errors: Vec<(SqlType, Vec<u8>, &str)> = vec![
        (
            Int,
            vec![1, 2, 3],
            "Size of data received by IntegerDeserializer is not 4",
        ),
        (
            Int,
            vec![],
            "Size of data received by IntegerDeserializer is not 4",
        ),
        (
            Bigint,
            vec![1; 4],
            "Size of data received by LongDeserializer is not 8",
        ),
        (
            Double,
            vec![1; 9],
            "Size of data received by DoubleDeserializer is not 8",
        ),
        (String, vec![0xff, 0xfe], "UTF-8"),
    ];
    for (ty, bytes, expected) in errors {
        let message = serde_message(decode_row(
            Format::Kafka,
            &[("K", ty.clone())],
            SerdeOptions::default(),
            true,
            Some(&bytes),
        ));
        assert!(message.contains(expected), "{ty}: {message}");
    }
    let message = statement_message(RowDecoder::new(
        Format::Kafka,
        &columns(&[("A", Int), ("B", String)]),
        SerdeOptions::default(),
        true,
    ));
    assert!(
        message.contains("The 'KAFKA' format only supports a single field"),
        "{message}"
    );
    for (ty, word) in [
        (Boolean, "BOOLEAN"),
        (dec(4, 2), "DECIMAL"),
        (array_of(Int), "ARRAY"),
        (map_of(String, Int), "MAP"),
        (struct_of(&[("A", Int)]), "STRUCT"),
        (Timestamp, "TIMESTAMP"),
    ] {
        let message = statement_message(RowEncoder::new(
            Format::Kafka,
            &columns(&[("A", ty)]),
            SerdeOptions::default(),
            false,
        ));
        assert_eq!(
            message,
            format!("The 'KAFKA' format does not support type '{word}'")
        );
    }
    // No column: nothing read, nothing written.
    let mut decoder = RowDecoder::new(Format::Kafka, &[], SerdeOptions::default(), true).unwrap();
    decoder.append(Some(b"whatever")).unwrap();
    assert_eq!(decoder.len(), 1);
    assert!(decoder.finish().is_empty());
    let encoder = RowEncoder::new(Format::Kafka, &[], SerdeOptions::default(), true).unwrap();
    let mut out = Vec::new();
    assert!(!encoder.encode(&[], 0, &mut out).unwrap());
    assert!(out.is_empty());
}

fn delimited(spec: &[(&str, SqlType)], delimiter: char, text: &[u8]) -> Result<Vec<String>> {
    decode_row(
        Format::Delimited,
        spec,
        SerdeOptions {
            delimiter,
            ..SerdeOptions::default()
        },
        false,
        Some(text),
    )
}

#[test]
fn delimited_format() {
    use SqlType::*;
    let row = [("ID", Int), ("NAME", String), ("AMOUNT", Double)];
    let cases: Vec<(Spec, char, &str, Vec<&str>)> = vec![
        (row.to_vec(), ',', "1,abc,1.5", vec!["1", "abc", "1.5"]),
        (row.to_vec(), ',', "1,abc,1.5\n", vec!["1", "abc", "1.5"]),
        (row.to_vec(), ',', "1,abc,1.5\r\n", vec!["1", "abc", "1.5"]),
        (row.to_vec(), ',', "1,\"a,b\",2", vec!["1", "a,b", "2.0"]),
        (
            row.to_vec(),
            ',',
            "1,\"he said \"\"hi\"\"\",2",
            vec!["1", "he said \"hi\"", "2.0"],
        ),
        (
            row.to_vec(),
            ',',
            "1,\"two\nlines\",2",
            vec!["1", "two\nlines", "2.0"],
        ),
        (row.to_vec(), ',', ",,", vec!["null", "null", "null"]),
        (row.to_vec(), ',', "1,\"\",", vec!["1", "null", "null"]),
        (
            row.to_vec(),
            ',',
            "1, spaced ,-2",
            vec!["1", " spaced ", "-2.0"],
        ),
        (row.to_vec(), ',', "1,a\"b,3", vec!["1", "a\"b", "3.0"]),
        (row.to_vec(), '|', "1|a,b|3", vec!["1", "a,b", "3.0"]),
        (row.to_vec(), '\t', "1\ta b\t3", vec!["1", "a b", "3.0"]),
        (row.to_vec(), '¦', "1¦é¦3", vec!["1", "é", "3.0"]),
        (
            vec![("B", Boolean), ("L", Bigint)],
            ',',
            "TRUE,-5",
            vec!["true", "-5"],
        ),
        (
            vec![("D", dec(6, 3)), ("Y", Bytes)],
            ',',
            "1.5,AQID",
            vec!["1.500", "010203"],
        ),
        (
            vec![("D", Date), ("T", Time), ("TS", Timestamp)],
            ',',
            "18262,1000,1577836800000",
            vec!["2020-01-01", "00:00:01", "2020-01-01T00:00:00"],
        ),
        (vec![("S", String)], ',', "", vec!["null"]),
        (vec![("S", String)], ',', "abc", vec!["abc"]),
    ];
    for (spec, delimiter, text, expected) in cases {
        let got = delimited(&spec, delimiter, text.as_bytes())
            .unwrap_or_else(|e| panic!("{text:?}: {e}"));
        assert_eq!(got, expected, "{text:?}");
    }
    let errors: Vec<(Spec, &str, &str)> = vec![
        (
            row.to_vec(),
            "1,2",
            "Unexpected field count, csvFields:2 schemaFields:3",
        ),
        (
            row.to_vec(),
            "1,2,3,4",
            "Unexpected field count, csvFields:4 schemaFields:3",
        ),
        (
            row.to_vec(),
            "x,a,1",
            "Error deserializing delimited field `ID`: 'x' is not a valid INTEGER value",
        ),
        (row.to_vec(), "1,a,zz", "'zz' is not a valid DOUBLE value"),
        (
            row.to_vec(),
            "1,\"a\"b,1",
            "invalid char between encapsulated token and delimiter",
        ),
        (
            row.to_vec(),
            "1,\"ab,1",
            "EOF reached before encapsulated token finished",
        ),
        (
            vec![("B", Boolean)],
            "maybe",
            "'maybe' is not a valid BOOLEAN value",
        ),
        (vec![("D", dec(3, 1))], "123.4", "Numeric field overflow"),
        (vec![("Y", Bytes)], "@@", "not a valid Base64"),
    ];
    for (spec, text, expected) in errors {
        let message = serde_message(delimited(&spec, ',', text.as_bytes()));
        assert!(message.contains(expected), "{text:?}: {message}");
    }
    let message = serde_message(delimited(&row, ',', b"1,\xff,2"));
    assert!(message.contains("invalid UTF-8"), "{message}");
    for ty in [array_of(Int), map_of(String, Int), struct_of(&[("A", Int)])] {
        let message = statement_message(RowDecoder::new(
            Format::Delimited,
            &columns(&[("A", Int), ("B", ty.clone())]),
            SerdeOptions::default(),
            false,
        ));
        assert!(
            message.starts_with("The 'DELIMITED' format does not support type"),
            "{message}"
        );
    }
}

#[test]
fn none_format() {
    let message = statement_message(RowDecoder::new(
        Format::None,
        &columns(&[("K", SqlType::Int)]),
        SerdeOptions::default(),
        true,
    ));
    assert!(message.contains("The 'NONE' format can only be used when no columns are defined"));
    let mut decoder = RowDecoder::new(Format::None, &[], SerdeOptions::default(), true).unwrap();
    decoder.append(Some(b"ignored")).unwrap();
    decoder.append(None).unwrap();
    assert_eq!(decoder.len(), 2);
    assert!(decoder.finish().is_empty());
    assert!(decoder.is_empty());
    let encoder = RowEncoder::new(Format::None, &[], SerdeOptions::default(), true).unwrap();
    let mut out = vec![1];
    assert!(!encoder.encode(&[], 0, &mut out).unwrap());
    assert_eq!(out, vec![1]);
}

#[test]
fn tombstones_and_missing_keys_are_null_rows() {
    for format in [Format::Json, Format::Delimited] {
        let mut decoder = RowDecoder::new(
            format,
            &columns(&[("A", SqlType::Int), ("B", SqlType::String)]),
            SerdeOptions::default(),
            false,
        )
        .unwrap();
        decoder.append(None).unwrap();
        let arrays = decoder.finish();
        assert!(arrays.iter().all(|a| a.len() == 1 && a.is_null(0)));
    }
}

#[test]
fn a_bad_record_leaves_no_trace() {
    use SqlType::*;
    let spec = columns(&[
        ("ID", Int),
        ("NAME", String),
        ("TAGS", array_of(struct_of(&[("K", String), ("V", Int)]))),
        ("M", map_of(String, Int)),
    ]);
    let mut decoder = RowDecoder::new(Format::Json, &spec, SerdeOptions::default(), false).unwrap();
    decoder
        .append(Some(
            br#"{"ID":1,"NAME":"one","TAGS":[{"K":"a","V":1}],"M":{"x":1}}"#,
        ))
        .unwrap();
    let bad: [&[u8]; 6] = [
        // Fails in the last column, after the others were appended.
        br#"{"ID":2,"NAME":"two","TAGS":[{"K":"b","V":2},{"K":"c","V":3}],"M":{"y":2,"z":"q"}}"#,
        // Fails inside a list, half-way through a struct.
        br#"{"ID":2,"NAME":"two","TAGS":[{"K":"b","V":2},{"K":"c","V":"x"}]}"#,
        // A syntax error after a duplicate replaced a value.
        br#"{"NAME":"two","name":"three","ID":2,"#,
        // A string column given an object, then broken.
        br#"{"NAME":{"a":[1,2,"#,
        br#"{"ID":2} trailing"#,
        b"\xff",
    ];
    for bytes in bad {
        assert!(decoder.append(Some(bytes)).is_err());
        assert_eq!(decoder.len(), 1);
    }
    decoder
        .append(Some(br#"{"ID":3,"NAME":"three","TAGS":null,"M":{}}"#))
        .unwrap();
    assert_eq!(decoder.len(), 2);
    let arrays = decoder.finish();
    let rows: Vec<Vec<std::string::String>> = (0..2)
        .map(|row| arrays.iter().map(|a| show(a.as_ref(), row)).collect())
        .collect();
    assert_eq!(
        rows,
        vec![
            vec!["1", "one", "[{K: a, V: 1}]", "{x: 1}"],
            vec!["3", "three", "null", "{}"],
        ]
    );
    // DELIMITED and KAFKA too.
    let mut decoder = RowDecoder::new(
        Format::Delimited,
        &columns(&[("A", Int), ("B", String), ("C", Int)]),
        SerdeOptions::default(),
        false,
    )
    .unwrap();
    decoder.append(Some(b"1,a,1")).unwrap();
    assert!(decoder.append(Some(b"2,b,x")).is_err());
    assert!(decoder.append(Some(b"2,\"b\"\"c\",x")).is_err());
    decoder.append(Some(b"3,c,3")).unwrap();
    let arrays = decoder.finish();
    assert_eq!(show(arrays[1].as_ref(), 1), "c");
    assert_eq!(arrays[2].len(), 2);
    // The decoder is reusable after finish.
    decoder.append(Some(b"4,d,4")).unwrap();
    let arrays = decoder.finish();
    assert_eq!(show(arrays[1].as_ref(), 0), "d");
}

/// Encodes row `row` of `arrays`; the text, or None for a null record.
fn encode_row(
    format: Format,
    spec: &[(&str, SqlType)],
    options: SerdeOptions,
    is_key: bool,
    arrays: &[ArrayRef],
    row: usize,
) -> Result<Option<Vec<u8>>> {
    let encoder = RowEncoder::new(format, &columns(spec), options, is_key)?;
    let mut out = b"prefix".to_vec();
    let written = encoder.encode(arrays, row, &mut out)?;
    assert!(out.starts_with(b"prefix"));
    let bytes = out[6..].to_vec();
    if written {
        Ok(Some(bytes))
    } else {
        assert!(bytes.is_empty());
        Ok(None)
    }
}

/// Decodes `texts` as JSON rows of `spec` (so test arrays of any type are easy to make).
fn arrays_from_json(spec: &[(&str, SqlType)], texts: &[&str]) -> Vec<ArrayRef> {
    let mut decoder =
        RowDecoder::new(Format::Json, &columns(spec), SerdeOptions::default(), false).unwrap();
    for text in texts {
        decoder.append(Some(text.as_bytes())).unwrap();
    }
    decoder.finish()
}

fn text(bytes: Option<Vec<u8>>) -> Option<String> {
    bytes.map(|b| String::from_utf8(b).unwrap())
}

#[test]
fn json_encode() {
    use SqlType::*;
    let spec = [
        ("ID", Int),
        ("NAME", String),
        ("AMOUNT", Double),
        ("PRICE", dec(6, 2)),
        ("RAW", Bytes),
        ("TS", Timestamp),
        ("D", Date),
        ("T", Time),
        ("OK", Boolean),
        ("L", Bigint),
    ];
    let arrays = arrays_from_json(
        &spec,
        &[
            r#"{"ID":1,"NAME":"a\"b\n\u0001é","AMOUNT":1.5,"PRICE":12.3,"RAW":"AQID","TS":1577836800000,"D":18262,"T":1000,"OK":true,"L":-5}"#,
            r#"{"AMOUNT":"NaN","PRICE":"-0.05"}"#,
            r#"{"AMOUNT":"Infinity","PRICE":0}"#,
            r#"{"AMOUNT":1e20}"#,
        ],
    );
    let encode = |row| {
        text(
            encode_row(
                Format::Json,
                &spec,
                SerdeOptions::default(),
                false,
                &arrays,
                row,
            )
            .unwrap(),
        )
    };
    assert_eq!(
        encode(0).unwrap(),
        r#"{"ID":1,"NAME":"a\"b\n\u0001é","AMOUNT":1.5,"PRICE":12.30,"RAW":"AQID","TS":1577836800000,"D":18262,"T":1000,"OK":true,"L":-5}"#
    );
    assert_eq!(
        encode(1).unwrap(),
        r#"{"ID":null,"NAME":null,"AMOUNT":"NaN","PRICE":-0.05,"RAW":null,"TS":null,"D":null,"T":null,"OK":null,"L":null}"#
    );
    assert!(encode(2)
        .unwrap()
        .contains(r#""AMOUNT":"Infinity","PRICE":0.00"#));
    // Shortest digits, in exponent form (`1e20` or `1e+20`: both JSON).
    let e3 = encode(3).unwrap();
    let amount = e3
        .split("\"AMOUNT\":")
        .nth(1)
        .unwrap()
        .split(',')
        .next()
        .unwrap();
    assert!(amount.len() <= 5, "{e3}");
    assert_eq!(amount.parse::<f64>().unwrap(), 1e20);

    let nested = [
        ("ITEMS", array_of(struct_of(&[("A", Int), ("b", String)]))),
        ("M", map_of(String, array_of(Int))),
        ("MI", map_of(Int, Boolean)),
    ];
    let arrays = arrays_from_json(
        &nested,
        &[
            r#"{"ITEMS":[{"A":1,"b":"x"},null,{}],"M":{"k":[1,null],"q\"":[]},"MI":{"7":true}}"#,
            r#"{"ITEMS":[],"M":null}"#,
        ],
    );
    let encode = |row| {
        text(
            encode_row(
                Format::Json,
                &nested,
                SerdeOptions::default(),
                false,
                &arrays,
                row,
            )
            .unwrap(),
        )
    };
    assert_eq!(
        encode(0).unwrap(),
        r#"{"ITEMS":[{"A":1,"b":"x"},null,{"A":null,"b":null}],"M":{"k":[1,null],"q\"":[]},"MI":{"7":true}}"#
    );
    assert_eq!(encode(1).unwrap(), r#"{"ITEMS":[],"M":null,"MI":null}"#);
    // Sliced arrays are read at their offset.
    let sliced: Vec<ArrayRef> = arrays.iter().map(|a| a.slice(1, 1)).collect();
    assert_eq!(
        text(
            encode_row(
                Format::Json,
                &nested,
                SerdeOptions::default(),
                false,
                &sliced,
                0
            )
            .unwrap()
        )
        .unwrap(),
        r#"{"ITEMS":[],"M":null,"MI":null}"#
    );
}

#[test]
fn json_encode_single_values_and_keys() {
    use SqlType::*;
    let arrays = arrays_from_json(&[("V", String)], &[r#"{"V":"x"}"#, "{}"]);
    let cases: Vec<(SerdeOptions, bool, usize, Option<&str>)> = vec![
        (SerdeOptions::default(), false, 0, Some(r#"{"V":"x"}"#)),
        (SerdeOptions::default(), false, 1, Some(r#"{"V":null}"#)),
        (unwrapped(), false, 0, Some(r#""x""#)),
        (unwrapped(), false, 1, None),
        (SerdeOptions::default(), true, 0, Some(r#""x""#)),
        (SerdeOptions::default(), true, 1, None),
    ];
    for (options, is_key, row, expected) in cases {
        let got = text(
            encode_row(
                Format::Json,
                &[("V", String)],
                options,
                is_key,
                &arrays,
                row,
            )
            .unwrap(),
        );
        assert_eq!(got.as_deref(), expected, "key {is_key} row {row}");
    }
    let spec = [("K1", Int), ("K2", String)];
    let arrays = arrays_from_json(&spec, &[r#"{"K1":1}"#, "{}"]);
    let key = |row| {
        text(
            encode_row(
                Format::Json,
                &spec,
                SerdeOptions::default(),
                true,
                &arrays,
                row,
            )
            .unwrap(),
        )
    };
    assert_eq!(key(0).as_deref(), Some(r#"{"K1":1,"K2":null}"#));
    assert_eq!(key(1), None);
}

#[test]
fn kafka_and_delimited_encode() {
    use SqlType::*;
    let arrays = arrays_from_json(&[("V", Int)], &[r#"{"V":258}"#, "{}"]);
    assert_eq!(
        encode_row(
            Format::Kafka,
            &[("V", Int)],
            SerdeOptions::default(),
            false,
            &arrays,
            0
        )
        .unwrap(),
        Some(vec![0, 0, 1, 2])
    );
    assert_eq!(
        encode_row(
            Format::Kafka,
            &[("V", Int)],
            SerdeOptions::default(),
            false,
            &arrays,
            1
        )
        .unwrap(),
        None
    );
    let arrays = arrays_from_json(&[("V", Bytes)], &[r#"{"V":"AP8="}"#]);
    assert_eq!(
        encode_row(
            Format::Kafka,
            &[("V", Bytes)],
            SerdeOptions::default(),
            true,
            &arrays,
            0
        )
        .unwrap(),
        Some(vec![0, 255])
    );

    let spec = [
        ("ID", Int),
        ("NAME", String),
        ("AMOUNT", Double),
        ("PRICE", dec(6, 2)),
        ("RAW", Bytes),
        ("OK", Boolean),
    ];
    let arrays = arrays_from_json(
        &spec,
        &[
            r#"{"ID":1,"NAME":"plain","AMOUNT":1.5,"PRICE":2,"RAW":"AQID","OK":false}"#,
            r#"{"NAME":"a,\"b\"\nc"}"#,
            r#"{"NAME":""}"#,
            r#"{"NAME":"x|y","AMOUNT":"NaN"}"#,
        ],
    );
    let line = |row, delimiter| {
        text(
            encode_row(
                Format::Delimited,
                &spec,
                SerdeOptions {
                    delimiter,
                    ..SerdeOptions::default()
                },
                false,
                &arrays,
                row,
            )
            .unwrap(),
        )
        .unwrap()
    };
    assert_eq!(line(0, ','), "1,plain,1.5,2.00,AQID,false");
    assert_eq!(line(1, ','), ",\"a,\"\"b\"\"\nc\",,,,");
    assert_eq!(line(2, ','), ",\"\",,,,");
    assert_eq!(line(3, ','), ",x|y,NaN,,,");
    assert_eq!(line(3, '|'), "|\"x|y\"|NaN|||");
    // A key of only nulls is a null record.
    let key = encode_row(
        Format::Delimited,
        &spec,
        SerdeOptions::default(),
        true,
        &arrays_from_json(&spec, &["{}"]),
        0,
    )
    .unwrap();
    assert_eq!(key, None);
}

#[test]
fn encode_errors() {
    use SqlType::*;
    let encoder = RowEncoder::new(
        Format::Json,
        &columns(&[("A", Int), ("B", String)]),
        SerdeOptions::default(),
        false,
    )
    .unwrap();
    let ints: ArrayRef = Arc::new(arrow::array::Int32Array::from(vec![1]));
    let mut out = vec![];
    // Wrong number of columns, wrong type, row out of bounds: errors, nothing written.
    assert!(matches!(
        encoder.encode(std::slice::from_ref(&ints), 0, &mut out),
        Err(KsqlError::Serde(_))
    ));
    let message = match encoder.encode(&[ints.clone(), ints.clone()], 0, &mut out) {
        Err(KsqlError::Serde(message)) => message,
        other => panic!("{other:?}"),
    };
    assert!(message.contains("Column `B`"), "{message}");
    let strings: ArrayRef = Arc::new(arrow::array::StringArray::from(vec!["x"]));
    assert!(matches!(
        encoder.encode(&[ints.clone(), strings.clone()], 1, &mut out),
        Err(KsqlError::Serde(_))
    ));
    assert!(out.is_empty());
    // Other string layouts are accepted.
    let large: ArrayRef = Arc::new(arrow::array::LargeStringArray::from(vec!["y"]));
    assert!(encoder.encode(&[ints.clone(), large], 0, &mut out).unwrap());
    let view: ArrayRef = Arc::new(arrow::array::StringViewArray::from(vec!["z"]));
    assert!(encoder.encode(&[ints, view], 0, &mut out).unwrap());
    assert_eq!(
        std::string::String::from_utf8(out).unwrap(),
        r#"{"A":1,"B":"y"}{"A":1,"B":"z"}"#
    );
}

#[test]
fn bound_columns_encode_many_rows() {
    use SqlType::*;
    let spec = [("ID", Int), ("NAME", String)];
    let arrays = arrays_from_json(&spec, &[r#"{"ID":1,"NAME":"a"}"#, r#"{"ID":2}"#]);
    let encoder = RowEncoder::new(
        Format::Json,
        &columns(&spec),
        SerdeOptions::default(),
        false,
    )
    .unwrap();
    let bound = encoder.bind(&arrays).unwrap();
    let mut out = Vec::new();
    for row in 0..2 {
        assert!(bound.encode(row, &mut out).unwrap());
        out.push(b'\n');
    }
    assert_eq!(
        std::string::String::from_utf8(out).unwrap(),
        "{\"ID\":1,\"NAME\":\"a\"}\n{\"ID\":2,\"NAME\":null}\n"
    );
}

// ---------------------------------------------------------------------------------------
// Property tests.

/// A primitive value of a column, for round trips.
#[derive(Debug, Clone)]
enum Value {
    Null,
    Boolean(bool),
    Int(i32),
    Bigint(i64),
    Double(f64),
    Decimal(i128),
    String(String),
    Bytes(Vec<u8>),
    Date(i32),
    Time(i32),
    Timestamp(i64),
}

fn primitive_types() -> Vec<SqlType> {
    vec![
        SqlType::Boolean,
        SqlType::Int,
        SqlType::Bigint,
        SqlType::Double,
        dec(10, 2),
        SqlType::String,
        SqlType::Bytes,
        SqlType::Date,
        SqlType::Time,
        SqlType::Timestamp,
    ]
}

fn value_strategy(ty: &SqlType) -> BoxedStrategy<Value> {
    let value = match ty {
        SqlType::Boolean => any::<bool>().prop_map(Value::Boolean).boxed(),
        SqlType::Int => any::<i32>().prop_map(Value::Int).boxed(),
        SqlType::Bigint => any::<i64>().prop_map(Value::Bigint).boxed(),
        SqlType::Double => prop_oneof![
            any::<f64>().prop_filter("finite", |v| v.is_finite()),
            Just(0.1),
            Just(-0.0),
            Just(1e300),
            Just(f64::MIN_POSITIVE),
        ]
        .prop_map(Value::Double)
        .boxed(),
        SqlType::Decimal { .. } => (-9_999_999_999i128..=9_999_999_999)
            .prop_map(Value::Decimal)
            .boxed(),
        SqlType::String => prop_oneof![
            any::<String>(),
            "[a-z,\"\n\r| ]{0,8}",
            Just("\"".to_string()),
        ]
        .prop_map(Value::String)
        .boxed(),
        SqlType::Bytes => prop::collection::vec(any::<u8>(), 0..12)
            .prop_map(Value::Bytes)
            .boxed(),
        SqlType::Date => any::<i32>().prop_map(Value::Date).boxed(),
        SqlType::Time => (0..86_400_000).prop_map(Value::Time).boxed(),
        SqlType::Timestamp => any::<i64>().prop_map(Value::Timestamp).boxed(),
        _ => unreachable!(),
    };
    prop_oneof![1 => Just(Value::Null), 4 => value].boxed()
}

fn build_array(ty: &SqlType, values: &[Value]) -> ArrayRef {
    macro_rules! build {
        ($builder:expr, $variant:ident) => {{
            let mut b = $builder;
            for v in values {
                match v {
                    Value::$variant(x) => b.append_value(x.clone()),
                    _ => b.append_null(),
                }
            }
            Arc::new(b.finish()) as ArrayRef
        }};
    }
    match ty {
        SqlType::Boolean => build!(BooleanBuilder::new(), Boolean),
        SqlType::Int => build!(Int32Builder::new(), Int),
        SqlType::Bigint => build!(Int64Builder::new(), Bigint),
        SqlType::Double => build!(Float64Builder::new(), Double),
        SqlType::Decimal { precision, scale } => build!(
            Decimal128Builder::new()
                .with_precision_and_scale(*precision as u8, *scale as i8)
                .unwrap(),
            Decimal
        ),
        SqlType::String => build!(StringBuilder::new(), String),
        SqlType::Bytes => build!(BinaryBuilder::new(), Bytes),
        SqlType::Date => build!(Date32Builder::new(), Date),
        SqlType::Time => build!(Time32MillisecondBuilder::new(), Time),
        SqlType::Timestamp => build!(TimestampMillisecondBuilder::new(), Timestamp),
        _ => unreachable!(),
    }
}

fn json_value_strategy() -> impl Strategy<Value = serde_json::Value> {
    use serde_json::Value as J;
    let leaf = prop_oneof![
        Just(J::Null),
        any::<bool>().prop_map(J::Bool),
        any::<i64>().prop_map(J::from),
        any::<u64>().prop_map(J::from),
        any::<f64>()
            .prop_filter("finite", |v| v.is_finite())
            .prop_map(J::from),
        any::<std::string::String>().prop_map(J::String),
    ];
    leaf.prop_recursive(4, 32, 6, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..6).prop_map(J::Array),
            prop::collection::btree_map(any::<std::string::String>(), inner, 0..6)
                .prop_map(|m| J::Object(m.into_iter().collect())),
        ]
    })
}

/// Columns of random primitive types and rows of random values for them.
fn table() -> impl Strategy<Value = (Vec<SqlType>, Vec<Vec<Value>>)> {
    prop::collection::vec(prop::sample::select(primitive_types()), 1..5).prop_flat_map(|types| {
        let row: Vec<BoxedStrategy<Value>> = types.iter().map(value_strategy).collect();
        (Just(types), prop::collection::vec(row, 1..6))
    })
}

/// Encodes every row of the table and decodes it again; the decoded columns.
fn round_trip(
    format: Format,
    types: &[SqlType],
    rows: &[Vec<Value>],
    options: SerdeOptions,
    is_key: bool,
) -> (Vec<ArrayRef>, Vec<ArrayRef>) {
    let spec: Vec<(String, SqlType)> = types
        .iter()
        .enumerate()
        .map(|(i, ty)| (format!("C{i}"), ty.clone()))
        .collect();
    let arrays: Vec<ArrayRef> = types
        .iter()
        .enumerate()
        .map(|(c, ty)| {
            let column: Vec<Value> = rows.iter().map(|r| r[c].clone()).collect();
            build_array(ty, &column)
        })
        .collect();
    let encoder = RowEncoder::new(format, &spec, options.clone(), is_key).unwrap();
    let mut decoder = RowDecoder::new(format, &spec, options, is_key).unwrap();
    let mut out = Vec::new();
    for row in 0..rows.len() {
        out.clear();
        let written = encoder.encode(&arrays, row, &mut out).unwrap();
        let record = written.then_some(out.as_slice());
        decoder
            .append(record)
            .unwrap_or_else(|e| panic!("{e}: {:?}", String::from_utf8_lossy(&out)));
    }
    assert_eq!(decoder.len(), rows.len());
    (arrays, decoder.finish())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(96))]

    #[test]
    fn json_round_trip((types, rows) in table(), wrap in any::<bool>(), is_key in any::<bool>()) {
        let options = SerdeOptions { wrap_single_value: wrap, ..SerdeOptions::default() };
        let (arrays, decoded) = round_trip(Format::Json, &types, &rows, options, is_key);
        for (a, d) in arrays.iter().zip(&decoded) {
            prop_assert_eq!(a.as_ref(), d.as_ref());
        }
    }

    #[test]
    fn delimited_round_trip(
        (types, rows) in table(),
        delimiter in prop::sample::select(vec![',', '|', '\t', ' ', '¦', 'a']),
        is_key in any::<bool>(),
    ) {
        let options = SerdeOptions { delimiter, ..SerdeOptions::default() };
        let (arrays, decoded) = round_trip(Format::Delimited, &types, &rows, options, is_key);
        // An empty string or byte string is written `""`, and read as null, as in ksqlDB.
        let expected: Vec<Vec<Value>> = rows
            .iter()
            .map(|row| {
                row.iter()
                    .map(|v| match v {
                        Value::String(s) if s.is_empty() => Value::Null,
                        Value::Bytes(b) if b.is_empty() => Value::Null,
                        other => other.clone(),
                    })
                    .collect()
            })
            .collect();
        for (c, (ty, d)) in types.iter().zip(&decoded).enumerate() {
            let column: Vec<Value> = expected.iter().map(|r| r[c].clone()).collect();
            let want = build_array(ty, &column);
            prop_assert_eq!(want.as_ref(), d.as_ref());
        }
        prop_assert_eq!(arrays.len(), decoded.len());
    }

    #[test]
    fn kafka_round_trip(
        ty in prop::sample::select(vec![SqlType::Int, SqlType::Bigint, SqlType::Double, SqlType::String, SqlType::Bytes]),
        seed in any::<u64>(),
    ) {
        let values: Vec<Value> = (0..4u64)
            .map(|i| {
                let x = seed.wrapping_mul(6364136223846793005).wrapping_add(i);
                match (&ty, x % 5) {
                    (_, 0) => Value::Null,
                    (SqlType::Int, _) => Value::Int(x as i32),
                    (SqlType::Bigint, _) => Value::Bigint(x as i64),
                    (SqlType::Double, _) => Value::Double(f64::from_bits(x >> 2)),
                    (SqlType::String, _) => Value::String(format!("s{x}é")),
                    _ => Value::Bytes(x.to_le_bytes().to_vec()),
                }
            })
            .collect();
        let rows: Vec<Vec<Value>> = values.into_iter().map(|v| vec![v]).collect();
        let (arrays, decoded) = round_trip(Format::Kafka, std::slice::from_ref(&ty), &rows, SerdeOptions::default(), false);
        prop_assert_eq!(arrays[0].as_ref(), decoded[0].as_ref());
    }

    /// Any JSON value read into a STRING column is its compact text, as serde_json writes it.
    #[test]
    fn json_text_of_any_value(value in json_value_strategy()) {
        let text = serde_json::to_string(&value).unwrap();
        let pretty = serde_json::to_string_pretty(&value).unwrap();
        for input in [&text, &pretty] {
            let got = decode_row(
                Format::Json,
                &[("V", SqlType::String)],
                unwrapped(),
                false,
                Some(input.as_bytes()),
            )
            .unwrap();
            let expected = match &value {
                serde_json::Value::Null => "null".to_string(),
                serde_json::Value::String(s) => s.clone(),
                _ => text.clone(),
            };
            prop_assert_eq!(&got[0], &expected);
        }
    }

    /// The parser accepts what serde_json accepts, and nothing else.
    #[test]
    fn json_syntax_as_serde_json(
        input in "[ \\[\\]{}\":,0-9a-c.eE+\\-nultr\\\\/u]{1,24}",
    ) {
        prop_assume!(!input.trim().is_empty());
        let ours = decode_row(
            Format::Json,
            &[("V", SqlType::String)],
            unwrapped(),
            false,
            Some(input.as_bytes()),
        );
        let theirs = serde_json::from_str::<serde_json::Value>(&input);
        prop_assert_eq!(ours.is_ok(), theirs.is_ok(), "{:?}: {:?}", input, ours);
    }

    /// No input bytes make any decoder panic, and a failed record leaves no trace.
    #[test]
    fn arbitrary_bytes_never_panic(
        records in prop::collection::vec(
            prop_oneof![
                prop::collection::vec(any::<u8>(), 0..48),
                "[-\\[\\]{}\":,0-9a-zA-Z. \\\\/eE+nul]{0,48}".prop_map(String::into_bytes),
                Just(br#"{"ID":1,"S":{"a":[1,2]},"L":[{"X":"1"}],"M":{"1":[2]}}"#.to_vec()),
            ],
            1..8,
        ),
    ) {
        use SqlType::*;
        let rich = columns(&[
            ("ID", Int),
            ("S", struct_of(&[("A", array_of(Bigint)), ("B", dec(5, 2))])),
            ("L", array_of(struct_of(&[("X", Double), ("Y", Bytes)]))),
            ("M", map_of(Int, array_of(Int))),
            ("N", String),
        ]);
        let primitive = columns(&[("A", Boolean), ("B", dec(4, 1)), ("C", String), ("D", Timestamp)]);
        let decoders = vec![
            RowDecoder::new(Format::Json, &rich, SerdeOptions::default(), false).unwrap(),
            RowDecoder::new(Format::Json, &rich[..1], unwrapped(), false).unwrap(),
            RowDecoder::new(Format::Json, &rich[1..2], SerdeOptions::default(), true).unwrap(),
            RowDecoder::new(Format::Json, &rich[4..], SerdeOptions::default(), true).unwrap(),
            RowDecoder::new(Format::Delimited, &primitive, SerdeOptions::default(), false).unwrap(),
            RowDecoder::new(Format::Delimited, &primitive[..1], SerdeOptions::default(), true).unwrap(),
            RowDecoder::new(Format::Kafka, &columns(&[("K", Int)]), SerdeOptions::default(), true).unwrap(),
            RowDecoder::new(Format::Kafka, &columns(&[("K", String)]), SerdeOptions::default(), true).unwrap(),
            RowDecoder::new(Format::None, &[], SerdeOptions::default(), true).unwrap(),
        ];
        for mut decoder in decoders {
            let mut ok = 0;
            for record in &records {
                if decoder.append(Some(record)).is_ok() {
                    ok += 1;
                }
                prop_assert_eq!(decoder.len(), ok);
            }
            let arrays = decoder.finish();
            for array in arrays {
                prop_assert_eq!(array.len(), ok);
                array.to_data().validate_full().unwrap();
            }
        }
    }
}

#[test]
fn map_builder_matches_arrow() {
    // The decoder's MAP arrays are what Arrow's own builder makes (same type, same layout).
    let arrays = arrays_from_json(
        &[("M", map_of(SqlType::String, SqlType::Int))],
        &[r#"{"M":{"a":1,"b":null}}"#, r#"{"M":null}"#],
    );
    let names = MapFieldNames {
        entry: "entries".to_string(),
        key: "key".to_string(),
        value: "value".to_string(),
    };
    let mut builder = MapBuilder::new(Some(names), StringBuilder::new(), Int32Builder::new());
    builder.keys().append_value("a");
    builder.values().append_value(1);
    builder.keys().append_value("b");
    builder.values().append_null();
    builder.append(true).unwrap();
    builder.append(false).unwrap();
    let expected = builder.finish();
    assert_eq!(arrays[0].as_ref(), &expected as &dyn Array);
}
