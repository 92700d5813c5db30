//! Transforms of `set_from_trigger` (FEATURES RU-9): pure functions from the trigger's value
//! to the value written, kept apart from the actor so each one is unit-tested on its own.

use clasp_proto::Value;
use serde_json::Value as Json;

use super::file::{json_to_value, Bad, Obj};

/// An easing curve on a 0..1 input (inputs outside are clamped first).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Curve {
    /// y = x.
    Linear,
    /// Quadratic, slow start: y = x².
    EaseIn,
    /// Quadratic, slow end: y = 1 − (1 − x)².
    EaseOut,
    /// Quadratic both ends.
    EaseInOut,
    /// y = (2^(10x) − 1) / 1023: most of the change at the top.
    Exponential,
    /// The inverse of `exponential`: most of the change at the bottom.
    Logarithmic,
}

impl Curve {
    fn named(name: &str) -> Option<Self> {
        Some(match name {
            "linear" => Self::Linear,
            "ease_in" => Self::EaseIn,
            "ease_out" => Self::EaseOut,
            "ease_in_out" => Self::EaseInOut,
            "exponential" => Self::Exponential,
            "logarithmic" => Self::Logarithmic,
            _ => return None,
        })
    }

    /// The curve at `x` (clamped to 0..1).
    pub fn at(self, x: f64) -> f64 {
        let x = x.clamp(0.0, 1.0);
        match self {
            Self::Linear => x,
            Self::EaseIn => x * x,
            Self::EaseOut => 1.0 - (1.0 - x) * (1.0 - x),
            Self::EaseInOut if x < 0.5 => 2.0 * x * x,
            Self::EaseInOut => 1.0 - (-2.0 * x + 2.0).powi(2) / 2.0,
            Self::Exponential => ((10.0 * x).exp2() - 1.0) / 1023.0,
            Self::Logarithmic => (1.0 + 1023.0 * x).log2() / 10.0,
        }
    }
}

/// How a trigger's value is changed before it is written.
#[derive(Debug, Clone, PartialEq)]
pub enum Transform {
    /// Unchanged (any type).
    Identity,
    /// v · factor + offset.
    Scale {
        /// Multiplier.
        factor: f64,
        /// Added after.
        offset: f64,
    },
    /// v + value.
    Offset {
        /// Added.
        value: f64,
    },
    /// Limited to min..max.
    Clamp {
        /// Lower bound.
        min: f64,
        /// Upper bound.
        max: f64,
    },
    /// Linear map of in_min..in_max onto out_min..out_max (not clamped unless asked).
    Map {
        /// Input range start.
        in_min: f64,
        /// Input range end (≠ in_min).
        in_max: f64,
        /// Output range start.
        out_min: f64,
        /// Output range end.
        out_max: f64,
        /// Clamp the result to the output range.
        clamp: bool,
    },
    /// 1 − v, or max − (v − min) with a range.
    Invert {
        /// Range start (0 by default).
        min: f64,
        /// Range end (1 by default).
        max: f64,
    },
    /// Rounded; to an integer without `decimals`.
    Round {
        /// Digits kept after the point.
        decimals: Option<u32>,
    },
    /// |v|.
    Abs,
    /// `above` if v ≥ value, else `below`.
    Threshold {
        /// The threshold.
        value: f64,
        /// Written at or above it (default true).
        above: Value,
        /// Written below it (default false).
        below: Value,
    },
    /// An easing curve on 0..1.
    Curve(Curve),
    /// Several transforms in order (a JSON array).
    Chain(Vec<Transform>),
}

/// Why a value could not be transformed.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum TransformError {
    /// A numeric transform got something else.
    #[error("transform {transform}: the trigger value is not a number ({found:?})")]
    NotANumber {
        /// Which transform.
        transform: &'static str,
        /// The value it got.
        found: Value,
    },
}

impl Transform {
    /// Reads a transform object (or an array of them) at `path`.
    pub fn parse(path: &str, v: &Json) -> Result<Self, Bad> {
        if let Json::Array(list) = v {
            return list
                .iter()
                .enumerate()
                .map(|(i, t)| Self::parse(&format!("{path}[{i}]"), t))
                .collect::<Result<Vec<_>, _>>()
                .map(Self::Chain);
        }
        let o = Obj::new(path, v)?;
        let tag = o.tag()?;
        let t = match tag {
            "identity" | "abs" | "linear" | "ease_in" | "ease_out" | "ease_in_out"
            | "exponential" | "logarithmic" => {
                o.only(&["type"])?;
                match Curve::named(tag) {
                    Some(c) => Self::Curve(c),
                    None if tag == "abs" => Self::Abs,
                    None => Self::Identity,
                }
            }
            "curve" => {
                o.only(&["type", "curve"])?;
                let name = o.str("curve")?;
                Self::Curve(Curve::named(name).ok_or_else(|| {
                    Bad::new(
                        o.at("curve"),
                        format!("unknown curve {name:?} (linear, ease_in, ease_out, ease_in_out, exponential, logarithmic)"),
                    )
                })?)
            }
            "scale" => {
                o.only(&["type", "factor", "offset"])?;
                Self::Scale {
                    factor: o.num("factor")?,
                    offset: o.opt_num("offset")?.unwrap_or(0.0),
                }
            }
            "offset" => {
                o.only(&["type", "value"])?;
                Self::Offset {
                    value: o.num("value")?,
                }
            }
            "clamp" => {
                o.only(&["type", "min", "max"])?;
                let (min, max) = (o.num("min")?, o.num("max")?);
                if min > max {
                    return Err(Bad::new(o.at("max"), "must not be less than min"));
                }
                Self::Clamp { min, max }
            }
            "map" => {
                o.only(&["type", "in_min", "in_max", "out_min", "out_max", "clamp"])?;
                let (in_min, in_max) = (o.num("in_min")?, o.num("in_max")?);
                if in_min == in_max {
                    return Err(Bad::new(o.at("in_max"), "must differ from in_min"));
                }
                Self::Map {
                    in_min,
                    in_max,
                    out_min: o.num("out_min")?,
                    out_max: o.num("out_max")?,
                    clamp: o.opt_bool("clamp")?.unwrap_or(false),
                }
            }
            "invert" => {
                o.only(&["type", "min", "max"])?;
                Self::Invert {
                    min: o.opt_num("min")?.unwrap_or(0.0),
                    max: o.opt_num("max")?.unwrap_or(1.0),
                }
            }
            "round" => {
                o.only(&["type", "decimals"])?;
                let decimals = match o.opt_num("decimals")? {
                    None => None,
                    Some(d) if (0.0..=15.0).contains(&d) && d.fract() == 0.0 => Some(d as u32),
                    Some(_) => {
                        return Err(Bad::new(o.at("decimals"), "expected a whole number 0..15"))
                    }
                };
                Self::Round { decimals }
            }
            "threshold" => {
                o.only(&["type", "value", "above", "below"])?;
                Self::Threshold {
                    value: o.num("value")?,
                    above: o.opt("above").map_or(Value::Bool(true), json_to_value),
                    below: o.opt("below").map_or(Value::Bool(false), json_to_value),
                }
            }
            other => {
                return Err(Bad::new(
                    o.at("type"),
                    format!("unknown transform {other:?} (identity, scale, offset, clamp, map, invert, round, abs, threshold, curve, linear, ease_in, ease_out, ease_in_out, exponential, logarithmic)"),
                ))
            }
        };
        Ok(t)
    }

    fn name(&self) -> &'static str {
        match self {
            Self::Identity => "identity",
            Self::Scale { .. } => "scale",
            Self::Offset { .. } => "offset",
            Self::Clamp { .. } => "clamp",
            Self::Map { .. } => "map",
            Self::Invert { .. } => "invert",
            Self::Round { .. } => "round",
            Self::Abs => "abs",
            Self::Threshold { .. } => "threshold",
            Self::Curve(_) => "curve",
            Self::Chain(_) => "chain",
        }
    }

    /// The transformed value. Numeric transforms accept ints and floats and answer floats,
    /// except where an int is the natural answer (round to 0 decimals; abs and clamp of an
    /// int that stays whole).
    pub fn apply(&self, v: &Value) -> Result<Value, TransformError> {
        let num = || {
            v.as_f64().ok_or_else(|| TransformError::NotANumber {
                transform: self.name(),
                found: v.clone(),
            })
        };
        let keep_int = |x: f64| match v {
            Value::Int(_) if x.fract() == 0.0 && x.abs() < 9.0e15 => Value::Int(x as i64),
            _ => Value::Float(x),
        };
        Ok(match self {
            Self::Identity => v.clone(),
            Self::Scale { factor, offset } => Value::Float(num()? * factor + offset),
            Self::Offset { value } => keep_int(num()? + value),
            Self::Clamp { min, max } => keep_int(num()?.clamp(*min, *max)),
            Self::Map {
                in_min,
                in_max,
                out_min,
                out_max,
                clamp,
            } => {
                let t = (num()? - in_min) / (in_max - in_min);
                let y = out_min + t * (out_max - out_min);
                let (lo, hi) = (out_min.min(*out_max), out_min.max(*out_max));
                Value::Float(if *clamp { y.clamp(lo, hi) } else { y })
            }
            Self::Invert { min, max } => Value::Float(max - (num()? - min)),
            Self::Round { decimals: None } => {
                let r = num()?.round();
                if r.abs() < 9.0e15 {
                    Value::Int(r as i64)
                } else {
                    Value::Float(r)
                }
            }
            Self::Round { decimals: Some(d) } => {
                let p = 10f64.powi(*d as i32);
                Value::Float((num()? * p).round() / p)
            }
            Self::Abs => keep_int(num()?.abs()),
            Self::Threshold {
                value,
                above,
                below,
            } => {
                if num()? >= *value {
                    above.clone()
                } else {
                    below.clone()
                }
            }
            Self::Curve(c) => Value::Float(c.at(num()?)),
            Self::Chain(list) => {
                let mut out = v.clone();
                for t in list {
                    out = t.apply(&out)?;
                }
                out
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn t(j: Json) -> Transform {
        Transform::parse("transform", &j).expect("valid transform")
    }

    fn f(tr: &Transform, x: f64) -> f64 {
        tr.apply(&Value::Float(x))
            .ok()
            .and_then(|v| v.as_f64())
            .expect("a number")
    }

    fn close(a: f64, b: f64) -> bool {
        (a - b).abs() < 1e-9
    }

    #[test]
    fn arithmetic_transforms() {
        assert_eq!(
            t(json!({"type":"identity"})).apply(&"x".into()),
            Ok("x".into())
        );
        // 25 °C → 77 °F (FEATURES RU-9).
        let c_to_f = t(json!({"type":"scale","factor":1.8,"offset":32}));
        assert!(close(f(&c_to_f, 25.0), 77.0));
        assert_eq!(c_to_f.apply(&Value::Int(25)), Ok(Value::Float(77.0)));
        assert_eq!(
            t(json!({"type":"offset","value":2})).apply(&Value::Int(3)),
            Ok(Value::Int(5))
        );
        let clamp = t(json!({"type":"clamp","min":0,"max":1}));
        assert_eq!(f(&clamp, 1.5), 1.0);
        assert_eq!(f(&clamp, -0.5), 0.0);
        assert_eq!(clamp.apply(&Value::Int(7)), Ok(Value::Int(1)));
        let map = t(json!({"type":"map","in_min":0,"in_max":127,"out_min":0,"out_max":1}));
        assert!(close(f(&map, 63.5), 0.5));
        assert!(close(f(&map, 254.0), 2.0), "unclamped by default");
        let map_c =
            t(json!({"type":"map","in_min":0,"in_max":10,"out_min":1,"out_max":0,"clamp":true}));
        assert!(close(f(&map_c, 2.5), 0.75));
        assert!(close(f(&map_c, 20.0), 0.0));
        assert!(close(f(&t(json!({"type":"invert"})), 0.25), 0.75));
        assert!(close(
            f(&t(json!({"type":"invert","min":0,"max":255})), 55.0),
            200.0
        ));
        assert_eq!(
            t(json!({"type":"round"})).apply(&Value::Float(2.5)),
            Ok(Value::Int(3))
        );
        assert!(close(
            f(&t(json!({"type":"round","decimals":2})), 1.23456),
            1.23
        ));
        assert_eq!(
            t(json!({"type":"abs"})).apply(&Value::Int(-4)),
            Ok(Value::Int(4))
        );
        assert!(close(f(&t(json!({"type":"abs"})), -0.5), 0.5));
        let th = t(json!({"type":"threshold","value":30,"above":"hot","below":"ok"}));
        assert_eq!(th.apply(&Value::Int(30)), Ok("hot".into()));
        assert_eq!(th.apply(&Value::Float(29.9)), Ok("ok".into()));
        let th = t(json!({"type":"threshold","value":0.5}));
        assert_eq!(th.apply(&Value::Float(0.7)), Ok(Value::Bool(true)));
        let chain = t(json!([{"type":"scale","factor":2},{"type":"clamp","min":0,"max":1}]));
        assert_eq!(f(&chain, 0.8), 1.0);
    }

    #[test]
    fn curves_run_from_zero_to_one() {
        for name in [
            "linear",
            "ease_in",
            "ease_out",
            "ease_in_out",
            "exponential",
            "logarithmic",
        ] {
            let c = t(json!({"type": name}));
            assert!(close(f(&c, 0.0), 0.0), "{name} at 0");
            assert!(close(f(&c, 1.0), 1.0), "{name} at 1");
            assert!(close(f(&c, 2.0), 1.0), "{name} clamps its input");
            assert_eq!(c, t(json!({"type":"curve","curve": name})));
        }
        assert!(close(f(&t(json!({"type":"ease_in"})), 0.5), 0.25));
        assert!(close(f(&t(json!({"type":"ease_out"})), 0.5), 0.75));
        assert!(close(f(&t(json!({"type":"ease_in_out"})), 0.25), 0.125));
        assert!(close(f(&t(json!({"type":"ease_in_out"})), 0.75), 0.875));
        let (e, l) = (
            t(json!({"type":"exponential"})),
            t(json!({"type":"logarithmic"})),
        );
        assert!(f(&e, 0.5) < 0.1 && f(&l, 0.5) > 0.9);
        assert!(close(f(&l, f(&e, 0.3)), 0.3), "inverse curves");
    }

    #[test]
    fn non_numbers_are_errors_not_panics() {
        let err = t(json!({"type":"scale","factor":2})).apply(&"x".into());
        assert!(matches!(
            err,
            Err(TransformError::NotANumber {
                transform: "scale",
                ..
            })
        ));
    }

    #[test]
    fn bad_transforms_name_the_field() {
        let bad = |j: Json| Transform::parse("actions[0].transform", &j).err();
        assert_eq!(
            bad(json!({"type":"scale","factor":"x"})),
            Some(Bad::new(
                "actions[0].transform.factor",
                "expected a number, found a string"
            ))
        );
        assert_eq!(
            bad(json!({"type":"map","in_min":1,"in_max":1,"out_min":0,"out_max":1}))
                .map(|b| b.field),
            Some("actions[0].transform.in_max".into())
        );
        assert_eq!(
            bad(json!([{"type":"abs"},{"type":"nope"}])).map(|b| b.field),
            Some("actions[0].transform[1].type".into())
        );
        assert!(bad(json!({"type":"round","decimals":1.5})).is_some());
        assert!(bad(json!({"type":"clamp","min":2,"max":1})).is_some());
    }
}
