//! Whether presence is kept and where lifecycle events go: `PRESENCE` and `EVENT_BUS_NAME`, read
//! by the ingress and the worker alike.

use crate::environment::Env;

/// Presence and lifecycle events, as a function's environment sets them.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PresenceSettings {
    /// `PRESENCE` (`true` by default): members kept, `presence` answered, `join`/`leave` sent.
    /// Off, a subscribe costs what it did before presence existed.
    pub on: bool,
    /// `EVENT_BUS_NAME`: the EventBridge bus lifecycle events go to; none (empty) sends none.
    pub event_bus: Option<String>,
}

impl Default for PresenceSettings {
    fn default() -> Self {
        Self { on: true, event_bus: None }
    }
}

impl PresenceSettings {
    pub fn from_env<F: Fn(&str) -> Option<String>>(env: &mut Env<F>) -> Self {
        let on: bool = env.optional("PRESENCE", true);
        let bus: String = env.optional("EVENT_BUS_NAME", String::new());
        let event_bus = (!bus.trim().is_empty()).then(|| bus.trim().to_owned());
        if event_bus.is_some() && !on {
            env.invalid("EVENT_BUS_NAME", "lifecycle events need PRESENCE=true".into());
        }
        Self { on, event_bus }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::vars;

    #[test]
    fn presence_is_on_without_events_by_default_and_events_need_presence() {
        let read = |pairs: &[(&str, &str)]| {
            let mut env = Env::new(vars(pairs));
            let settings = PresenceSettings::from_env(&mut env);
            env.finish().map(|()| settings)
        };
        assert_eq!(read(&[]).expect("defaults"), PresenceSettings::default());
        assert_eq!(read(&[("EVENT_BUS_NAME", " ")]).expect("blank").event_bus, None);
        let on = read(&[("EVENT_BUS_NAME", "app-events")]).expect("a bus");
        assert_eq!(on.event_bus.as_deref(), Some("app-events"));
        assert!(!read(&[("PRESENCE", "false")]).expect("off").on);
        assert!(read(&[("PRESENCE", "false"), ("EVENT_BUS_NAME", "app-events")]).is_err());
        assert!(read(&[("PRESENCE", "maybe")]).is_err());
    }
}
