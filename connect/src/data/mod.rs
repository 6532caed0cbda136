//! Connect's data model: [`Schema`]s and [`Value`]s (with [`Struct`]s), and the logical types
//! decimal, date, time and timestamp.

pub mod logical;
mod schema;
mod value;

pub use schema::{Field, Schema, SchemaBuilder, SchemaRef, Type};
pub use value::{validate_optional, Struct, Value};
