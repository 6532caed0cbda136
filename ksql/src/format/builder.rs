//! Column builders of the decoder: typed (chosen once from the column's type), and able to
//! be cut back to a row count, so that a record failing half-way is undone.

use std::sync::Arc;

use arrow::array::BooleanBufferBuilder;
use arrow::array::{
    new_null_array, Array, ArrayRef, ArrowPrimitiveType, BinaryArray, BooleanArray, ListArray,
    MapArray, NullBufferBuilder, PrimitiveArray, StringArray, StructArray,
};
use arrow::buffer::{Buffer, OffsetBuffer, ScalarBuffer};
use arrow::datatypes::{
    DataType, Date32Type, Decimal128Type, Field, Fields, Float64Type, Int32Type, Int64Type,
    Time32MillisecondType, TimestampMillisecondType,
};

use super::{map_entries_field, map_kv_fields, struct_fields, Kind};

/// Values of one primitive type and their validity.
pub(crate) struct Prim<T: ArrowPrimitiveType> {
    values: Vec<T::Native>,
    nulls: NullBufferBuilder,
}

impl<T: ArrowPrimitiveType> Prim<T> {
    fn new() -> Self {
        Prim {
            values: Vec::new(),
            nulls: NullBufferBuilder::new(0),
        }
    }

    #[inline]
    pub(crate) fn push(&mut self, value: T::Native) {
        self.values.push(value);
        self.nulls.append_non_null();
    }

    fn push_null(&mut self) {
        self.values.push(T::Native::default());
        self.nulls.append_null();
    }

    fn truncate(&mut self, len: usize) {
        self.values.truncate(len);
        self.nulls.truncate(len);
    }

    fn finish(&mut self, data_type: DataType) -> ArrayRef {
        let values = ScalarBuffer::from(std::mem::take(&mut self.values));
        Arc::new(PrimitiveArray::<T>::new(values, self.nulls.finish()).with_data_type(data_type))
    }
}

/// Variable-length values (strings, bytes): their offsets, data and validity.
pub(crate) struct Var {
    offsets: Vec<i32>,
    pub(crate) data: Vec<u8>,
    nulls: NullBufferBuilder,
}

impl Var {
    fn new() -> Var {
        Var {
            offsets: vec![0],
            data: Vec::new(),
            nulls: NullBufferBuilder::new(0),
        }
    }

    fn len(&self) -> usize {
        self.offsets.len() - 1
    }

    #[inline]
    pub(crate) fn push(&mut self, value: &[u8]) -> Result<(), String> {
        self.data.extend_from_slice(value);
        self.close()
    }

    /// Ends a value whose bytes were written to `data` directly.
    #[inline]
    pub(crate) fn close(&mut self) -> Result<(), String> {
        let end = i32::try_from(self.data.len()).map_err(|_| too_large())?;
        self.offsets.push(end);
        self.nulls.append_non_null();
        Ok(())
    }

    /// Drops bytes written to `data` since the last value ended (a value given up).
    pub(crate) fn discard_open(&mut self) {
        let end = self.offsets.last().copied().unwrap_or(0) as usize;
        self.data.truncate(end);
    }

    fn push_null(&mut self) {
        let end = self.offsets.last().copied().unwrap_or(0);
        self.offsets.push(end);
        self.nulls.append_null();
    }

    fn truncate(&mut self, len: usize) {
        if len < self.len() {
            self.offsets.truncate(len + 1);
            self.nulls.truncate(len);
        }
        self.discard_open();
    }

    fn take(&mut self) -> (OffsetBuffer<i32>, Buffer, Option<arrow::buffer::NullBuffer>) {
        let offsets = std::mem::replace(&mut self.offsets, vec![0]);
        let data = std::mem::take(&mut self.data);
        (
            OffsetBuffer::new(ScalarBuffer::from(offsets)),
            Buffer::from_vec(data),
            self.nulls.finish(),
        )
    }
}

fn too_large() -> String {
    "The batch being built holds more than 2 GiB of variable-length data".to_string()
}

/// The offsets and validity of lists and maps.
pub(crate) struct Offsets {
    offsets: Vec<i32>,
    nulls: NullBufferBuilder,
}

impl Offsets {
    fn new() -> Offsets {
        Offsets {
            offsets: vec![0],
            nulls: NullBufferBuilder::new(0),
        }
    }

    fn len(&self) -> usize {
        self.offsets.len() - 1
    }

    /// Ends a list or map whose entries (now `children_len` in all) were appended.
    pub(crate) fn close(&mut self, children_len: usize) -> Result<(), String> {
        let end = i32::try_from(children_len).map_err(|_| too_large())?;
        self.offsets.push(end);
        self.nulls.append_non_null();
        Ok(())
    }

    fn push_null(&mut self) {
        let end = self.offsets.last().copied().unwrap_or(0);
        self.offsets.push(end);
        self.nulls.append_null();
    }

    /// Cuts back to `len` rows; returns the length the children must be cut back to.
    fn truncate(&mut self, len: usize) -> usize {
        if len < self.len() {
            self.offsets.truncate(len + 1);
            self.nulls.truncate(len);
        }
        self.offsets.last().copied().unwrap_or(0) as usize
    }

    fn take(&mut self) -> (OffsetBuffer<i32>, Option<arrow::buffer::NullBuffer>) {
        let offsets = std::mem::replace(&mut self.offsets, vec![0]);
        (
            OffsetBuffer::new(ScalarBuffer::from(offsets)),
            self.nulls.finish(),
        )
    }
}

/// The builder of one column (or of a nested field, item, key or value).
pub(crate) enum Builder {
    Boolean {
        values: BooleanBufferBuilder,
        nulls: NullBufferBuilder,
    },
    Int(Prim<Int32Type>),
    Bigint(Prim<Int64Type>),
    Double(Prim<Float64Type>),
    Decimal {
        prim: Prim<Decimal128Type>,
        precision: u8,
        scale: i8,
    },
    String(Var),
    Bytes(Var),
    Date(Prim<Date32Type>),
    Time(Prim<Time32MillisecondType>),
    Timestamp(Prim<TimestampMillisecondType>),
    Array {
        offsets: Offsets,
        item: Box<Builder>,
        field: Arc<Field>,
    },
    Map {
        offsets: Offsets,
        keys: Box<Builder>,
        values: Box<Builder>,
        entries: Arc<Field>,
        kv: Fields,
    },
    Struct {
        names: Vec<String>,
        children: Vec<Builder>,
        nulls: NullBufferBuilder,
        fields: Fields,
        /// Whether a JSON field name can match two of these fields (names differing only in
        /// case): the matcher then looks at every field.
        clash: bool,
    },
}

impl Builder {
    pub(crate) fn new(kind: &Kind) -> Builder {
        match kind {
            Kind::Boolean => Builder::Boolean {
                values: BooleanBufferBuilder::new(0),
                nulls: NullBufferBuilder::new(0),
            },
            Kind::Int => Builder::Int(Prim::new()),
            Kind::Bigint => Builder::Bigint(Prim::new()),
            Kind::Double => Builder::Double(Prim::new()),
            Kind::Decimal { precision, scale } => Builder::Decimal {
                prim: Prim::new(),
                precision: *precision,
                scale: *scale,
            },
            Kind::String => Builder::String(Var::new()),
            Kind::Bytes => Builder::Bytes(Var::new()),
            Kind::Date => Builder::Date(Prim::new()),
            Kind::Time => Builder::Time(Prim::new()),
            Kind::Timestamp => Builder::Timestamp(Prim::new()),
            Kind::Array(item) => Builder::Array {
                offsets: Offsets::new(),
                item: Box::new(Builder::new(item)),
                field: Arc::new(Field::new("item", item.data_type(), true)),
            },
            Kind::Map(key, value) => Builder::Map {
                offsets: Offsets::new(),
                keys: Box::new(Builder::new(key)),
                values: Box::new(Builder::new(value)),
                entries: map_entries_field(key, value),
                kv: map_kv_fields(key, value),
            },
            Kind::Struct(fields) => {
                let names: Vec<String> = fields.iter().map(|(name, _)| name.clone()).collect();
                Builder::Struct {
                    clash: super::json::names_clash(&names),
                    names,
                    children: fields.iter().map(|(_, kind)| Builder::new(kind)).collect(),
                    nulls: NullBufferBuilder::new(0),
                    fields: struct_fields(fields),
                }
            }
        }
    }

    /// ksqlDB's name of the type's base, as its errors print it.
    pub(crate) fn base_name(&self) -> &'static str {
        match self {
            Builder::Boolean { .. } => "BOOLEAN",
            Builder::Int(_) => "INTEGER",
            Builder::Bigint(_) => "BIGINT",
            Builder::Double(_) => "DOUBLE",
            Builder::Decimal { .. } => "DECIMAL",
            Builder::String(_) => "STRING",
            Builder::Bytes(_) => "BYTES",
            Builder::Date(_) => "DATE",
            Builder::Time(_) => "TIME",
            Builder::Timestamp(_) => "TIMESTAMP",
            Builder::Array { .. } => "ARRAY",
            Builder::Map { .. } => "MAP",
            Builder::Struct { .. } => "STRUCT",
        }
    }

    pub(crate) fn len(&self) -> usize {
        match self {
            Builder::Boolean { values, .. } => values.len(),
            Builder::Int(p) => p.values.len(),
            Builder::Bigint(p) => p.values.len(),
            Builder::Double(p) => p.values.len(),
            Builder::Decimal { prim, .. } => prim.values.len(),
            Builder::String(v) | Builder::Bytes(v) => v.len(),
            Builder::Date(p) => p.values.len(),
            Builder::Time(p) => p.values.len(),
            Builder::Timestamp(p) => p.values.len(),
            Builder::Array { offsets, .. } | Builder::Map { offsets, .. } => offsets.len(),
            Builder::Struct { nulls, .. } => nulls.len(),
        }
    }

    pub(crate) fn append_null(&mut self) {
        match self {
            Builder::Boolean { values, nulls } => {
                values.append(false);
                nulls.append_null();
            }
            Builder::Int(p) => p.push_null(),
            Builder::Bigint(p) => p.push_null(),
            Builder::Double(p) => p.push_null(),
            Builder::Decimal { prim, .. } => prim.push_null(),
            Builder::String(v) | Builder::Bytes(v) => v.push_null(),
            Builder::Date(p) => p.push_null(),
            Builder::Time(p) => p.push_null(),
            Builder::Timestamp(p) => p.push_null(),
            Builder::Array { offsets, .. } | Builder::Map { offsets, .. } => offsets.push_null(),
            Builder::Struct {
                children, nulls, ..
            } => {
                for child in children {
                    child.append_null();
                }
                nulls.append_null();
            }
        }
    }

    #[inline]
    pub(crate) fn append_bool(
        values: &mut BooleanBufferBuilder,
        nulls: &mut NullBufferBuilder,
        v: bool,
    ) {
        values.append(v);
        nulls.append_non_null();
    }

    /// Cuts the builder back to its first `len` rows (no effect if it holds fewer), children
    /// included; bytes written for a value not ended are dropped too.
    pub(crate) fn truncate(&mut self, len: usize) {
        match self {
            Builder::Boolean { values, nulls } => {
                if len < values.len() {
                    values.truncate(len);
                }
                nulls.truncate(len);
            }
            Builder::Int(p) => p.truncate(len),
            Builder::Bigint(p) => p.truncate(len),
            Builder::Double(p) => p.truncate(len),
            Builder::Decimal { prim, .. } => prim.truncate(len),
            Builder::String(v) | Builder::Bytes(v) => v.truncate(len),
            Builder::Date(p) => p.truncate(len),
            Builder::Time(p) => p.truncate(len),
            Builder::Timestamp(p) => p.truncate(len),
            Builder::Array { offsets, item, .. } => {
                let children = offsets.truncate(len);
                item.truncate(children);
            }
            Builder::Map {
                offsets,
                keys,
                values,
                ..
            } => {
                let children = offsets.truncate(len);
                keys.truncate(children);
                values.truncate(children);
            }
            Builder::Struct {
                children, nulls, ..
            } => {
                for child in children {
                    child.truncate(len);
                }
                nulls.truncate(len);
            }
        }
    }

    /// The array built so far; the builder starts again empty.
    pub(crate) fn finish(&mut self) -> ArrayRef {
        let len = self.len();
        let data_type = self.data_type();
        let built: Result<ArrayRef, arrow::error::ArrowError> = match self {
            Builder::Boolean { values, nulls } => {
                Ok(Arc::new(BooleanArray::new(values.finish(), nulls.finish())))
            }
            Builder::Int(p) => Ok(p.finish(data_type.clone())),
            Builder::Bigint(p) => Ok(p.finish(data_type.clone())),
            Builder::Double(p) => Ok(p.finish(data_type.clone())),
            Builder::Decimal { prim, .. } => Ok(prim.finish(data_type.clone())),
            Builder::Date(p) => Ok(p.finish(data_type.clone())),
            Builder::Time(p) => Ok(p.finish(data_type.clone())),
            Builder::Timestamp(p) => Ok(p.finish(data_type.clone())),
            Builder::String(v) => {
                let (offsets, data, nulls) = v.take();
                StringArray::try_new(offsets, data, nulls).map(|a| Arc::new(a) as ArrayRef)
            }
            Builder::Bytes(v) => {
                let (offsets, data, nulls) = v.take();
                BinaryArray::try_new(offsets, data, nulls).map(|a| Arc::new(a) as ArrayRef)
            }
            Builder::Array {
                offsets,
                item,
                field,
            } => {
                let (offsets, nulls) = offsets.take();
                ListArray::try_new(field.clone(), offsets, item.finish(), nulls)
                    .map(|a| Arc::new(a) as ArrayRef)
            }
            Builder::Map {
                offsets,
                keys,
                values,
                entries,
                kv,
            } => {
                let (offsets, nulls) = offsets.take();
                let keys = keys.finish();
                let entry_count = keys.len();
                StructArray::try_new_with_length(
                    kv.clone(),
                    vec![keys, values.finish()],
                    None,
                    entry_count,
                )
                .and_then(|entries_array| {
                    MapArray::try_new(entries.clone(), offsets, entries_array, nulls, false)
                })
                .map(|a| Arc::new(a) as ArrayRef)
            }
            Builder::Struct {
                children,
                nulls,
                fields,
                ..
            } => {
                let arrays = children.iter_mut().map(Builder::finish).collect();
                StructArray::try_new_with_length(fields.clone(), arrays, nulls.finish(), len)
                    .map(|a| Arc::new(a) as ArrayRef)
            }
        };
        match built {
            Ok(array) => array,
            Err(e) => {
                // The builders keep Arrow's invariants by construction; should one not hold,
                // the batch's rows of this column are null rather than the process aborted.
                debug_assert!(false, "format builder produced an invalid array: {e}");
                self.truncate(0);
                new_null_array(&data_type, len)
            }
        }
    }

    fn data_type(&self) -> DataType {
        match self {
            Builder::Boolean { .. } => DataType::Boolean,
            Builder::Int(_) => DataType::Int32,
            Builder::Bigint(_) => DataType::Int64,
            Builder::Double(_) => DataType::Float64,
            Builder::Decimal {
                precision, scale, ..
            } => DataType::Decimal128(*precision, *scale),
            Builder::String(_) => DataType::Utf8,
            Builder::Bytes(_) => DataType::Binary,
            Builder::Date(_) => Date32Type::DATA_TYPE,
            Builder::Time(_) => Time32MillisecondType::DATA_TYPE,
            Builder::Timestamp(_) => TimestampMillisecondType::DATA_TYPE,
            Builder::Array { field, .. } => DataType::List(field.clone()),
            Builder::Map { entries, .. } => DataType::Map(entries.clone(), false),
            Builder::Struct { fields, .. } => DataType::Struct(fields.clone()),
        }
    }
}
