//! The two pure decisions of a firing: has an `on_threshold` value crossed (with its armed
//! state and hysteresis), and does a condition hold on the current value. Kept apart from
//! the actor so the semantics of FEATURES RU-4 and RU-7 are unit-tested directly.

use clasp_proto::Value;

use super::file::{Condition, Op};

/// Per-address state of an `on_threshold` trigger.
#[derive(Debug, Clone, Copy)]
pub struct Armed {
    /// May fire on going above.
    pub above: bool,
    /// May fire on going below.
    pub below: bool,
}

impl Default for Armed {
    fn default() -> Self {
        Self {
            above: true,
            below: true,
        }
    }
}

/// Whether an `on_threshold` fires for `v`, updating its armed state: it fires once when
/// the value goes beyond a threshold and re-arms only after coming back past it by the
/// hysteresis.
pub fn crossed(
    armed: &mut Armed,
    v: f64,
    above: Option<f64>,
    below: Option<f64>,
    hyst: f64,
) -> bool {
    let mut fire = false;
    if let Some(t) = above {
        if armed.above && v > t {
            armed.above = false;
            fire = true;
        } else if !armed.above && v <= t - hyst {
            armed.above = true;
        }
    }
    if let Some(t) = below {
        if armed.below && v < t {
            armed.below = false;
            fire = true;
        } else if !armed.below && v >= t + hyst {
            armed.below = true;
        }
    }
    fire
}

/// A condition against the current value: missing state is false except for `eq null`;
/// numbers compare numerically (int against float too); other types only by eq/ne.
pub fn holds(c: &Condition, current: Option<&Value>) -> bool {
    let Some(current) = current else {
        return c.op == Op::Eq && c.value == Value::Null;
    };
    if let (Some(a), Some(b)) = (current.as_f64(), c.value.as_f64()) {
        return match c.op {
            Op::Eq => a == b,
            Op::Ne => a != b,
            Op::Gt => a > b,
            Op::Gte => a >= b,
            Op::Lt => a < b,
            Op::Lte => a <= b,
        };
    }
    match c.op {
        Op::Eq => *current == c.value,
        Op::Ne => *current != c.value,
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rules::file::{Condition, Op};

    #[test]
    fn threshold_fires_once_per_crossing_with_hysteresis() {
        let mut a = Armed::default();
        let fired: Vec<bool> = [25.0, 31.0, 32.0, 24.0, 31.0]
            .iter()
            .map(|v| crossed(&mut a, *v, Some(30.0), None, 0.0))
            .collect();
        assert_eq!(fired, [false, true, false, false, true]);
        let mut a = Armed::default();
        // With hysteresis 2, 29 does not re-arm; 28 does.
        let fired: Vec<bool> = [31.0, 29.0, 31.0, 28.0, 31.0]
            .iter()
            .map(|v| crossed(&mut a, *v, Some(30.0), None, 2.0))
            .collect();
        assert_eq!(fired, [true, false, false, false, true]);
        let mut a = Armed::default();
        let fired: Vec<bool> = [15.0, 9.0, 8.0, 10.5, 11.0, 9.0]
            .iter()
            .map(|v| crossed(&mut a, *v, None, Some(10.0), 1.0))
            .collect();
        assert_eq!(fired, [false, true, false, false, false, true]);
    }

    #[test]
    fn conditions_follow_the_documented_semantics() {
        let c = |op, value: Value| Condition {
            address: "/x".into(),
            op,
            value,
        };
        assert!(!holds(&c(Op::Eq, 1.into()), None), "missing state is false");
        assert!(!holds(&c(Op::Ne, 1.into()), None));
        assert!(holds(&c(Op::Eq, Value::Null), None), "except eq null");
        assert!(holds(&c(Op::Eq, Value::Int(1)), Some(&Value::Float(1.0))));
        assert!(holds(&c(Op::Gt, Value::Int(1)), Some(&Value::Float(1.5))));
        assert!(holds(&c(Op::Lte, Value::Float(2.0)), Some(&Value::Int(2))));
        assert!(!holds(&c(Op::Lt, Value::Int(2)), Some(&Value::Int(2))));
        assert!(holds(&c(Op::Gte, Value::Int(2)), Some(&Value::Int(2))));
        assert!(holds(&c(Op::Eq, "live".into()), Some(&"live".into())));
        assert!(holds(&c(Op::Ne, "live".into()), Some(&"test".into())));
        assert!(
            !holds(&c(Op::Gt, "a".into()), Some(&"b".into())),
            "strings: eq/ne only"
        );
        assert!(holds(&c(Op::Eq, true.into()), Some(&true.into())));
        assert!(!holds(&c(Op::Eq, 1.into()), Some(&"1".into())));
    }
}
