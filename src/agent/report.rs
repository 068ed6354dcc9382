//! What the agent reports, in one place: the one rule for Kubernetes conditions (a condition's
//! `lastTransitionTime` changes only when its status does), used by the node's status, the
//! per-object isolation conditions and the deletion hold-down.

use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Condition, Time};

/// The condition `type_` with `status`, keeping `previous`'s transition time while the status
/// is the same (a condition that says the same thing again did not transition).
pub fn condition(
    previous: Option<&Condition>,
    type_: &str,
    status: bool,
    reason: &str,
    message: String,
    generation: Option<i64>,
    now: jiff::Timestamp,
) -> Condition {
    let status = if status { "True" } else { "False" };
    let since = previous.filter(|c| c.type_ == type_ && c.status == status).map(|c| c.last_transition_time.clone()).unwrap_or(Time(now));
    Condition {
        type_: type_.to_string(),
        status: status.to_string(),
        reason: reason.to_string(),
        message,
        last_transition_time: since,
        observed_generation: generation,
    }
}

/// The condition of `type_` among `conditions`.
pub fn find<'a>(conditions: &'a [Condition], type_: &str) -> Option<&'a Condition> {
    conditions.iter().find(|c| c.type_ == type_)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_transition_time_moves_only_with_the_status() {
        let (t0, t1, t2) =
            (jiff::Timestamp::from_second(1_000).unwrap(), jiff::Timestamp::from_second(2_000).unwrap(), jiff::Timestamp::from_second(3_000).unwrap());
        let a = condition(None, "Ready", true, "Applied", "first".into(), Some(1), t0);
        assert_eq!(a.last_transition_time.0, t0);
        let b = condition(Some(&a), "Ready", true, "Applied", "again, other words".into(), Some(2), t1);
        assert_eq!((b.last_transition_time.0, b.message.as_str(), b.observed_generation), (t0, "again, other words", Some(2)));
        let c = condition(Some(&b), "Ready", false, "Refused", "now false".into(), Some(2), t2);
        assert_eq!((c.last_transition_time.0, c.status.as_str()), (t2, "False"));
        // another type's condition is no previous one
        let d = condition(Some(&c), "Degraded", false, "Fine", String::new(), None, t2);
        assert_eq!(d.last_transition_time.0, t2);
        assert_eq!(find(&[a.clone(), d.clone()], "Degraded"), Some(&d));
    }
}
