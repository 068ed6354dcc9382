//! The watch layer of the agent and the webhook. Each watched kind is kept in a kube-runtime
//! reflector store, not of the objects themselves but of what this process derives from each
//! one (a typed FRRConfiguration or the reason it is malformed, a Secret's password entry, a
//! Node's labels): the API objects are dropped as soon as they are read. A store is replaced
//! atomically on every (re)list and is ready after its first complete list; readers take a
//! consistent snapshot without holding a lock while they work.

use std::borrow::Cow;
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures::{Stream, StreamExt};
use kube::api::DynamicObject;
use kube::runtime::reflector::{store::Writer, Lookup, Store};
use kube::runtime::watcher::{self, Event};
use kube::runtime::WatchStreamExt;
use kube::Resource;
use tokio::sync::Notify;

use crate::api::FRRConfiguration;

/// One object as kept: its name and the value derived from it (no resource version or uid:
/// nothing reads them, and the store keeps each entry's key beside it, so every string kept
/// here is kept twice, thousands of times).
#[derive(Clone, Debug, PartialEq)]
pub struct Entry<T> {
    pub namespace: Option<String>,
    pub name: String,
    pub value: T,
}

impl<T> Lookup for Entry<T> {
    type DynamicType = ();

    fn kind(_: &()) -> Cow<'_, str> {
        "Entry".into()
    }
    fn group(_: &()) -> Cow<'_, str> {
        "".into()
    }
    fn version(_: &()) -> Cow<'_, str> {
        "v1".into()
    }
    fn plural(_: &()) -> Cow<'_, str> {
        "entries".into()
    }
    fn name(&self) -> Option<Cow<'_, str>> {
        Some(Cow::Borrowed(&self.name))
    }
    fn namespace(&self) -> Option<Cow<'_, str>> {
        self.namespace.as_deref().map(Cow::Borrowed)
    }
    fn resource_version(&self) -> Option<Cow<'_, str>> {
        None
    }
    fn uid(&self) -> Option<Cow<'_, str>> {
        None
    }
}

/// A read handle on one watched kind.
pub type Reader<T> = Store<Entry<T>>;

/// The values of a store by name, in name order (for a store of one namespace).
pub fn by_name<T: Clone>(r: &Reader<T>) -> BTreeMap<String, T> {
    r.state().iter().map(|e| (e.name.clone(), e.value.clone())).collect()
}

/// Wakes whoever waits for a change in any of the watches, and counts the changes (a reader
/// that remembers the count knows whether anything changed since).
#[derive(Clone, Default)]
pub struct Changes {
    notify: Arc<Notify>,
    count: Arc<AtomicU64>,
}

impl Changes {
    pub fn changed(&self) {
        self.count.fetch_add(1, Ordering::SeqCst);
        self.notify.notify_one();
    }
    /// Returns after the next change (or at once if one happened since the last wait).
    pub async fn wait(&self) {
        self.notify.notified().await
    }
    pub fn count(&self) -> u64 {
        self.count.load(Ordering::SeqCst)
    }
}

/// The last error of each watch that is failing now (for logs and readiness).
#[derive(Clone, Default)]
pub struct WatchErrors(Arc<Mutex<BTreeMap<&'static str, String>>>);

impl WatchErrors {
    pub fn get(&self) -> BTreeMap<&'static str, String> {
        self.0.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }
    fn set(&self, name: &'static str, error: Option<String>) {
        let mut m = self.0.lock().unwrap_or_else(|e| e.into_inner());
        match error {
            Some(e) => m.insert(name, e),
            None => m.remove(name),
        };
    }
}

/// Watch retry delays: 0.5 s doubling to 10 s, back to 0.5 s after every successful event.
/// kube's default goes up to 30 s, which kept the agent a minute behind an API server that
/// came back (two waits: the reconnect, then the re-list after "resource version too old").
#[derive(Default)]
pub struct RetryDelay(u32);

impl Iterator for RetryDelay {
    type Item = Duration;
    fn next(&mut self) -> Option<Duration> {
        let d = Duration::from_millis(500) * 2u32.pow(self.0.min(5));
        self.0 += 1;
        Some(d.min(Duration::from_secs(10)))
    }
}

impl kube::runtime::utils::Backoff for RetryDelay {
    fn reset(&mut self) {
        self.0 = 0;
    }
}

fn entry<K: Resource, T>(o: &K, value: T) -> Entry<T> {
    let m = o.meta();
    Entry { namespace: m.namespace.clone(), name: m.name.clone().unwrap_or_default(), value }
}

/// Applies one watch event to a store (through its writer), deriving each object's value.
/// Returns whether what readers see changed: an object added, changed or removed, or a
/// complete (re)list.
pub fn apply_event<K: Resource, T: Clone + PartialEq>(writer: &mut Writer<Entry<T>>, event: Event<K>, derive: &impl Fn(&K) -> T) -> bool {
    apply_event_where(writer, event, derive, &|_: Option<&T>, _: Option<&T>| true)
}

/// As [`apply_event`], but a change of one object counts only when `relevant(old, new)` says
/// so (`None`: absent before, or deleted); a complete (re)list always counts.
pub fn apply_event_where<K: Resource, T: Clone + PartialEq>(
    writer: &mut Writer<Entry<T>>,
    event: Event<K>,
    derive: &impl Fn(&K) -> T,
    relevant: &impl Fn(Option<&T>, Option<&T>) -> bool,
) -> bool {
    let reader = writer.as_reader();
    let (event, changed) = match event {
        Event::Apply(o) => {
            let e = entry(&o, derive(&o));
            let old = reader.get(&e.to_object_ref(()));
            let changed = old.as_ref().is_none_or(|old| old.value != e.value) && relevant(old.as_ref().map(|o| &o.value), Some(&e.value));
            (Event::Apply(e), changed)
        }
        Event::Delete(o) => {
            let e = entry(&o, derive(&o));
            let changed = reader.get(&e.to_object_ref(())).is_some_and(|old| relevant(Some(&old.value), None));
            (Event::Delete(e), changed)
        }
        Event::Init => (Event::Init, false),
        Event::InitApply(o) => (Event::InitApply(entry(&o, derive(&o))), false),
        Event::InitDone => (Event::InitDone, true),
    };
    writer.apply_watcher_event(&event);
    changed
}

/// Starts one watch: `stream` is kube-runtime's watcher (or metadata watcher) of one kind;
/// every object is kept as `derive(&object)`. Failures are retried with `RetryDelay` and
/// recorded in `errors` until the watch works again. Changes wake `changes`.
pub fn reflect<K, T, S>(name: &'static str, stream: S, derive: impl Fn(&K) -> T + Send + 'static, changes: Changes, errors: WatchErrors) -> Reader<T>
where
    K: Resource + Send + 'static,
    T: Clone + PartialEq + Send + Sync + 'static,
    S: Stream<Item = Result<Event<K>, watcher::Error>> + Send + 'static,
{
    reflect_where(name, stream, derive, |_: Option<&T>, _: Option<&T>| true, None::<Refresh<T, ()>>, changes, errors)
}

/// How a store's kept values follow something other than their objects: whenever `trigger`
/// changes, `with` is offered every kept value, and what it returns replaces that value. (The
/// agent keeps an FRRConfiguration typed or compact depending on whether it selects the node,
/// so the node's labels are such a trigger.) A refresh changes the form of what is kept, never
/// its meaning, so it wakes nobody.
pub struct Refresh<T, X> {
    pub trigger: tokio::sync::watch::Receiver<X>,
    pub with: Box<RefreshFn<T>>,
}

/// A kept value to its new form (None: keep it as it is).
pub type RefreshFn<T> = dyn Fn(&T) -> Option<T> + Send;

/// Offers every kept value to `with` and stores what it returns.
pub fn refresh_store<T: Clone>(writer: &mut Writer<Entry<T>>, with: &RefreshFn<T>) -> usize {
    let replaced: Vec<Entry<T>> = writer
        .as_reader()
        .state()
        .iter()
        .filter_map(|e| with(&e.value).map(|value| Entry { namespace: e.namespace.clone(), name: e.name.clone(), value }))
        .collect();
    for e in &replaced {
        writer.apply_watcher_event(&Event::Apply(e.clone()));
    }
    replaced.len()
}

/// As [`reflect`], but only changes for which `relevant(old, new)` holds wake `changes` (the
/// store keeps every object either way), and kept values follow `refresh`, if given.
pub fn reflect_where<K, T, S, X>(
    name: &'static str,
    stream: S,
    derive: impl Fn(&K) -> T + Send + 'static,
    relevant: impl Fn(Option<&T>, Option<&T>) -> bool + Send + 'static,
    refresh: Option<Refresh<T, X>>,
    changes: Changes,
    errors: WatchErrors,
) -> Reader<T>
where
    K: Resource + Send + 'static,
    T: Clone + PartialEq + Send + Sync + 'static,
    S: Stream<Item = Result<Event<K>, watcher::Error>> + Send + 'static,
    X: Send + Sync + 'static,
{
    let mut writer: Writer<Entry<T>> = Writer::new(());
    let reader = writer.as_reader();
    tokio::spawn(async move {
        let mut stream = stream.backoff(RetryDelay::default()).boxed();
        let (mut trigger, with) = match refresh {
            Some(r) => (Some(r.trigger), Some(r.with)),
            None => (None, None),
        };
        loop {
            let ev = tokio::select! {
                ev = stream.next() => ev,
                Some(Ok(())) = async { match trigger.as_mut() { Some(t) => Some(t.changed().await), None => None } } => {
                    if let Some(with) = &with {
                        let n = refresh_store(&mut writer, with.as_ref());
                        tracing::debug!(watch = name, refreshed = n, "kept values refreshed");
                    }
                    continue;
                }
            };
            let Some(ev) = ev else { break };
            match ev {
                Ok(ev) => {
                    let changed = apply_event_where(&mut writer, ev, &derive, &relevant);
                    errors.set(name, None);
                    if changed {
                        tracing::debug!(watch = name, "changed");
                        changes.changed();
                    }
                }
                Err(e) => {
                    tracing::warn!(watch = name, error = %e, "watch failed; retrying");
                    errors.set(name, Some(e.to_string()));
                }
            }
        }
    });
    reader
}

/// Converts a FRRConfiguration that the API server holds into the typed object; a malformed one
/// becomes an error naming the field (it is reported, and left out). FRRConfigurations are
/// watched untyped, so that one malformed object cannot stop the watch.
pub fn typed_config(o: &DynamicObject) -> Result<FRRConfiguration, String> {
    let value = serde_json::to_value(o).map_err(|e| e.to_string())?;
    serde_path_to_error::deserialize::<_, FRRConfiguration>(value).map_err(|e| {
        let path = e.path().to_string();
        format!("{path}: {}", crate::input::field_reason("FRRConfiguration", &path, e.into_inner().to_string()))
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::api::core::v1::ConfigMap;
    use kube::runtime::utils::Backoff;

    fn cm(name: &str, v: &str) -> ConfigMap {
        let mut c = ConfigMap::default();
        c.metadata.name = Some(name.into());
        c.metadata.namespace = Some("ns".into());
        c.data = Some([("k".to_string(), v.to_string())].into());
        c
    }

    fn value(c: &ConfigMap) -> String {
        c.data.as_ref().and_then(|d| d.get("k").cloned()).unwrap_or_default()
    }

    #[test]
    fn store_follows_events_and_reports_changes() {
        let mut w: Writer<Entry<String>> = Writer::new(());
        let r = w.as_reader();
        assert!(!apply_event(&mut w, Event::Init, &value));
        assert!(!apply_event(&mut w, Event::InitApply(cm("a", "1")), &value));
        assert!(r.is_empty(), "a list in progress is not visible");
        assert!(apply_event(&mut w, Event::<ConfigMap>::InitDone, &value));
        assert_eq!(by_name(&r), [("a".to_string(), "1".to_string())].into());
        assert!(!apply_event(&mut w, Event::Apply(cm("a", "1")), &value), "same value: no change");
        assert!(apply_event(&mut w, Event::Apply(cm("a", "2")), &value));
        assert!(apply_event(&mut w, Event::Apply(cm("b", "1")), &value));
        assert!(apply_event(&mut w, Event::Delete(cm("a", "2")), &value));
        assert!(!apply_event(&mut w, Event::Delete(cm("a", "2")), &value), "already gone");
        assert_eq!(by_name(&r), [("b".to_string(), "1".to_string())].into());
        assert_eq!(r.state()[0].namespace.as_deref(), Some("ns"));
        // a re-list replaces everything at once
        apply_event(&mut w, Event::Init, &value);
        apply_event(&mut w, Event::InitApply(cm("c", "3")), &value);
        assert_eq!(by_name(&r).len(), 1, "old contents stay until the list is complete");
        apply_event(&mut w, Event::<ConfigMap>::InitDone, &value);
        assert_eq!(by_name(&r), [("c".to_string(), "3".to_string())].into());
    }

    #[test]
    fn irrelevant_changes_are_kept_but_wake_nobody() {
        let mut w: Writer<Entry<String>> = Writer::new(());
        let r = w.as_reader();
        // relevant: the value starts with "mine" before or after the change
        let mine = |old: Option<&String>, new: Option<&String>| [old, new].into_iter().flatten().any(|v| v.starts_with("mine"));
        apply_event_where(&mut w, Event::<ConfigMap>::Init, &value, &mine);
        assert!(apply_event_where(&mut w, Event::<ConfigMap>::InitDone, &value, &mine), "a list always counts");
        assert!(!apply_event_where(&mut w, Event::Apply(cm("a", "other-1")), &value, &mine));
        assert_eq!(by_name(&r)["a"], "other-1", "kept all the same");
        assert!(apply_event_where(&mut w, Event::Apply(cm("a", "mine-1")), &value, &mine), "becomes relevant");
        assert!(apply_event_where(&mut w, Event::Apply(cm("a", "other-2")), &value, &mine), "stops being relevant");
        assert!(!apply_event_where(&mut w, Event::Apply(cm("a", "other-3")), &value, &mine));
        assert!(!apply_event_where(&mut w, Event::Delete(cm("a", "other-3")), &value, &mine));
        assert!(r.is_empty());
        apply_event_where(&mut w, Event::Apply(cm("b", "mine-2")), &value, &mine);
        assert!(apply_event_where(&mut w, Event::Delete(cm("b", "mine-2")), &value, &mine), "a relevant object deleted");
    }

    #[test]
    fn a_refresh_replaces_the_values_it_is_given() {
        let mut w: Writer<Entry<String>> = Writer::new(());
        let r = w.as_reader();
        apply_event(&mut w, Event::<ConfigMap>::Init, &value);
        for (n, v) in [("a", "1"), ("b", "2"), ("c", "1")] {
            apply_event(&mut w, Event::InitApply(cm(n, v)), &value);
        }
        apply_event(&mut w, Event::<ConfigMap>::InitDone, &value);
        let n = refresh_store(&mut w, &|v: &String| (v == "1").then(|| "one".to_string()));
        assert_eq!(n, 2);
        let names = |v: &str| by_name(&r).into_iter().filter(|(_, x)| x == v).map(|(n, _)| n).collect::<Vec<_>>();
        assert_eq!((names("one"), names("2")), (vec!["a".to_string(), "c".to_string()], vec!["b".to_string()]));
        assert_eq!(r.state().len(), 3);
    }

    #[tokio::test]
    async fn readiness_comes_from_the_store() {
        let mut w: Writer<Entry<String>> = Writer::new(());
        let r = w.as_reader();
        let ready = tokio::time::timeout(Duration::from_millis(50), r.wait_until_ready()).await;
        assert!(ready.is_err(), "not ready before the first complete list");
        apply_event(&mut w, Event::<ConfigMap>::Init, &value);
        apply_event(&mut w, Event::<ConfigMap>::InitDone, &value);
        assert!(tokio::time::timeout(Duration::from_millis(50), r.wait_until_ready()).await.is_ok());
    }

    #[test]
    fn retry_delay_doubles_to_ten_seconds_and_resets() {
        let mut d = RetryDelay::default();
        let ms: Vec<u128> = (0..8).map(|_| d.next().unwrap().as_millis()).collect();
        assert_eq!(ms, [500, 1000, 2000, 4000, 8000, 10000, 10000, 10000]);
        d.reset();
        assert_eq!(d.next(), Some(Duration::from_millis(500)));
    }

    #[test]
    fn a_malformed_password_is_never_echoed() {
        let o: DynamicObject = serde_json::from_value(serde_json::json!({
            "apiVersion": "frrk8s.metallb.io/v1beta1", "kind": "FRRConfiguration",
            "metadata": {"name": "a", "namespace": "ns"},
            "spec": {"bgp": {"routers": [{"asn": 64512, "neighbors": [{"address": "192.0.2.1", "asn": 65001, "password": 987654321012u64}]}]}}
        }))
        .unwrap();
        let e = typed_config(&o).unwrap_err();
        assert!(!e.contains("987654321012") && e.contains("spec.bgp.routers[0].neighbors[0].password") && e.contains("not shown"), "{e}");
        // other fields keep their value in the message
        let o: DynamicObject = serde_json::from_value(serde_json::json!({
            "apiVersion": "frrk8s.metallb.io/v1beta1", "kind": "FRRConfiguration",
            "metadata": {"name": "a", "namespace": "ns"}, "spec": {"bgp": {"routers": [{"asn": "x"}]}}
        }))
        .unwrap();
        assert!(typed_config(&o).unwrap_err().contains("\"x\""));
    }
}
