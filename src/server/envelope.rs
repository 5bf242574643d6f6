//! Parsing one incoming envelope with bounds on what it may cost.
//!
//! An envelope is at most a few kilobytes of JSON in practice, but a hostile client can send a
//! megabyte of `[0,0,0,…]`, which `serde_json::Value` turns into ~80 bytes per element. Parsing
//! through [`parse`] refuses an envelope with more than [`MAX_NODES`] values or an array or
//! object with more than [`MAX_CONTAINER_LEN`] entries before it is built, so the memory an
//! event can take is bounded whatever its size. (Depth is bounded by serde_json: 128 levels.)

use std::fmt;

use serde::de::{DeserializeSeed, Deserializer, MapAccess, SeqAccess, Visitor};
use serde_json::{Map, Number, Value};

/// Values (of any kind, nested or not) one envelope may hold.
pub const MAX_NODES: usize = 100_000;

/// Entries one array or object of an envelope may hold.
pub const MAX_CONTAINER_LEN: usize = 10_000;

/// Parses `text` as one JSON value within [`MAX_NODES`] and [`MAX_CONTAINER_LEN`].
pub fn parse(text: &str) -> Result<Value, serde_json::Error> {
    let mut budget = MAX_NODES;
    let mut de = serde_json::Deserializer::from_str(text);
    let value = Bounded {
        budget: &mut budget,
    }
    .deserialize(&mut de)?;
    de.end()?;
    Ok(value)
}

struct Bounded<'b> {
    budget: &'b mut usize,
}

impl Bounded<'_> {
    fn take<E: serde::de::Error>(&mut self) -> Result<(), E> {
        if *self.budget == 0 {
            return Err(E::custom(format_args!(
                "the event holds more than {MAX_NODES} JSON values"
            )));
        }
        *self.budget -= 1;
        Ok(())
    }
}

impl<'de> DeserializeSeed<'de> for Bounded<'_> {
    type Value = Value;

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Value, D::Error> {
        d.deserialize_any(self)
    }
}

fn too_long<E: serde::de::Error>() -> E {
    E::custom(format_args!(
        "an array or object of the event has more than {MAX_CONTAINER_LEN} entries"
    ))
}

impl<'de> Visitor<'de> for Bounded<'_> {
    type Value = Value;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JSON value")
    }

    fn visit_bool<E: serde::de::Error>(mut self, v: bool) -> Result<Value, E> {
        self.take()?;
        Ok(Value::Bool(v))
    }

    fn visit_i64<E: serde::de::Error>(mut self, v: i64) -> Result<Value, E> {
        self.take()?;
        Ok(Value::Number(v.into()))
    }

    fn visit_u64<E: serde::de::Error>(mut self, v: u64) -> Result<Value, E> {
        self.take()?;
        Ok(Value::Number(v.into()))
    }

    fn visit_f64<E: serde::de::Error>(mut self, v: f64) -> Result<Value, E> {
        self.take()?;
        Number::from_f64(v)
            .map(Value::Number)
            .ok_or_else(|| E::custom("a number that is not finite"))
    }

    fn visit_str<E: serde::de::Error>(mut self, v: &str) -> Result<Value, E> {
        self.take()?;
        Ok(Value::String(v.to_owned()))
    }

    fn visit_string<E: serde::de::Error>(mut self, v: String) -> Result<Value, E> {
        self.take()?;
        Ok(Value::String(v))
    }

    fn visit_unit<E: serde::de::Error>(mut self) -> Result<Value, E> {
        self.take()?;
        Ok(Value::Null)
    }

    fn visit_none<E: serde::de::Error>(self) -> Result<Value, E> {
        self.visit_unit()
    }

    fn visit_seq<A: SeqAccess<'de>>(mut self, mut seq: A) -> Result<Value, A::Error> {
        self.take()?;
        let mut out = Vec::new();
        while let Some(v) = seq.next_element_seed(Bounded {
            budget: &mut *self.budget,
        })? {
            if out.len() == MAX_CONTAINER_LEN {
                return Err(too_long());
            }
            out.push(v);
        }
        Ok(Value::Array(out))
    }

    fn visit_map<A: MapAccess<'de>>(mut self, mut map: A) -> Result<Value, A::Error> {
        self.take()?;
        let mut out = Map::new();
        while let Some(key) = map.next_key::<String>()? {
            if out.len() == MAX_CONTAINER_LEN {
                return Err(too_long());
            }
            let v = map.next_value_seed(Bounded {
                budget: &mut *self.budget,
            })?;
            out.insert(key, v);
        }
        Ok(Value::Object(out))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ordinary_json_parses_as_serde_json_does() {
        let text = r#"{"a":[1,-2,3.5,"x",null,true,{"b":{}}],"c":"d"}"#;
        assert_eq!(
            parse(text).expect("parses"),
            serde_json::from_str::<Value>(text).expect("json")
        );
    }

    #[test]
    fn huge_arrays_and_value_floods_are_refused() {
        let long = format!("[{}]", vec!["0"; MAX_CONTAINER_LEN + 1].join(","));
        assert!(parse(&long).is_err());
        let nested: Vec<String> = (0..20)
            .map(|_| format!("[{}]", vec!["0"; 9000].join(",")))
            .collect();
        let flood = format!("[{}]", nested.join(","));
        let err = parse(&flood).expect_err("over the node budget");
        assert!(err.to_string().contains("JSON values"), "{err}");
    }

    #[test]
    fn trailing_text_is_refused() {
        assert!(parse("{} {}").is_err());
    }
}
