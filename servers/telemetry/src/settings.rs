//! The OpenTelemetry trace export settings, read from the standard
//! `OTEL_*` variables and checked before anything starts.

use std::fmt;

/// The `OTEL_*` variables as the environment gives them (unset: `None`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RawTraceSettings {
    /// `OTEL_EXPORTER_OTLP_ENDPOINT`: the collector's base URL; tracing is
    /// off when unset or empty.
    pub endpoint: Option<String>,
    /// `OTEL_EXPORTER_OTLP_PROTOCOL`: `http/protobuf` (default) or `grpc`.
    pub protocol: Option<String>,
    /// `OTEL_SERVICE_NAME`: overrides the role's service name.
    pub service_name: Option<String>,
    /// `OTEL_TRACES_SAMPLER`.
    pub sampler: Option<String>,
    /// `OTEL_TRACES_SAMPLER_ARG`: the ratio of the ratio samplers.
    pub sampler_arg: Option<String>,
    /// `OTEL_RESOURCE_ATTRIBUTES`: `key=value,key=value`.
    pub resource_attributes: Option<String>,
}

/// How spans reach the collector.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Protocol {
    /// OTLP protobuf over HTTP, POSTed to `<endpoint>/v1/traces`.
    #[default]
    HttpProtobuf,
    /// OTLP over gRPC (tonic) to the endpoint as given.
    Grpc,
}

/// Which traces are recorded (`OTEL_TRACES_SAMPLER`).
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Sampler {
    /// `always_on`.
    AlwaysOn,
    /// `always_off`.
    AlwaysOff,
    /// `traceidratio`: that fraction of traces, whatever the caller decided.
    TraceIdRatio(f64),
    /// `parentbased_always_on` (the default): the caller's decision, else on.
    ParentBasedAlwaysOn,
    /// `parentbased_always_off`: the caller's decision, else off.
    ParentBasedAlwaysOff,
    /// `parentbased_traceidratio`: the caller's decision, else that fraction.
    ParentBasedTraceIdRatio(f64),
}

/// Valid trace export settings; exists only when an endpoint is set.
#[derive(Debug, Clone, PartialEq)]
pub struct TraceSettings {
    /// The collector's base URL (`http://collector:4318`).
    pub endpoint: String,
    /// How spans are sent.
    pub protocol: Protocol,
    /// `service.name` when set; else the role's name.
    pub service_name: Option<String>,
    /// Which traces are recorded.
    pub sampler: Sampler,
    /// Extra resource attributes, in the order given.
    pub resource_attributes: Vec<(String, String)>,
}

/// A variable that cannot be used, with the reason.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SettingError {
    /// The variable, as the user spells it.
    pub setting: &'static str,
    /// What is wrong and what is expected.
    pub reason: String,
}

impl fmt::Display for SettingError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "invalid {}: {}", self.setting, self.reason)
    }
}

impl std::error::Error for SettingError {}

fn error(setting: &'static str, reason: impl Into<String>) -> SettingError {
    SettingError { setting, reason: reason.into() }
}

fn non_empty(value: Option<&String>) -> Option<&str> {
    value.map(|v| v.trim()).filter(|v| !v.is_empty())
}

impl RawTraceSettings {
    /// Checks the variables: `Ok(None)` when no endpoint is set (tracing
    /// off; the other variables are still checked, so a typo does not wait
    /// for the day the endpoint is set).
    ///
    /// # Errors
    /// The first variable that cannot be used.
    pub fn validate(&self) -> Result<Option<TraceSettings>, SettingError> {
        let protocol = match non_empty(self.protocol.as_ref()) {
            None | Some("http/protobuf") => Protocol::HttpProtobuf,
            Some("grpc") => Protocol::Grpc,
            Some(other) => {
                return Err(error(
                    "OTEL_EXPORTER_OTLP_PROTOCOL",
                    format!("{other:?}: expected http/protobuf or grpc (http/json is not supported)"),
                ));
            }
        };
        let sampler = self.sampler()?;
        let resource_attributes = match non_empty(self.resource_attributes.as_ref()) {
            None => Vec::new(),
            Some(list) => parse_attributes(list)?,
        };
        let service_name = non_empty(self.service_name.as_ref()).map(str::to_owned);
        let Some(endpoint) = non_empty(self.endpoint.as_ref()) else {
            return Ok(None);
        };
        let valid_url = ["http://", "https://"]
            .iter()
            .any(|scheme| endpoint.strip_prefix(scheme).is_some_and(|rest| !rest.is_empty() && !rest.contains(' ')));
        if !valid_url {
            return Err(error(
                "OTEL_EXPORTER_OTLP_ENDPOINT",
                format!("{endpoint:?}: expected the collector's URL such as http://localhost:4318"),
            ));
        }
        Ok(Some(TraceSettings { endpoint: endpoint.to_owned(), protocol, service_name, sampler, resource_attributes }))
    }

    fn sampler(&self) -> Result<Sampler, SettingError> {
        let ratio = || -> Result<f64, SettingError> {
            match non_empty(self.sampler_arg.as_ref()) {
                None => Ok(1.0),
                Some(arg) => match arg.parse::<f64>() {
                    Ok(r) if (0.0..=1.0).contains(&r) => Ok(r),
                    _ => Err(error("OTEL_TRACES_SAMPLER_ARG", format!("{arg:?}: expected a ratio from 0 to 1"))),
                },
            }
        };
        Ok(match non_empty(self.sampler.as_ref()) {
            None | Some("parentbased_always_on") => Sampler::ParentBasedAlwaysOn,
            Some("always_on") => Sampler::AlwaysOn,
            Some("always_off") => Sampler::AlwaysOff,
            Some("traceidratio") => Sampler::TraceIdRatio(ratio()?),
            Some("parentbased_always_off") => Sampler::ParentBasedAlwaysOff,
            Some("parentbased_traceidratio") => Sampler::ParentBasedTraceIdRatio(ratio()?),
            Some(other) => {
                return Err(error(
                    "OTEL_TRACES_SAMPLER",
                    format!(
                        "{other:?}: expected always_on, always_off, traceidratio, parentbased_always_on, \
                         parentbased_always_off or parentbased_traceidratio"
                    ),
                ));
            }
        })
    }
}

/// `key=value,key=value`, values percent-decoded as the spec asks.
fn parse_attributes(list: &str) -> Result<Vec<(String, String)>, SettingError> {
    list.split(',')
        .filter(|pair| !pair.trim().is_empty())
        .map(|pair| {
            let (key, value) = pair.split_once('=').ok_or_else(|| {
                error("OTEL_RESOURCE_ATTRIBUTES", format!("{pair:?}: expected key=value pairs separated by commas"))
            })?;
            let key = key.trim();
            if key.is_empty() {
                return Err(error("OTEL_RESOURCE_ATTRIBUTES", format!("{pair:?}: the key is empty")));
            }
            let value = percent_decode(value.trim())
                .ok_or_else(|| error("OTEL_RESOURCE_ATTRIBUTES", format!("{pair:?}: bad percent-encoding")))?;
            Ok((key.to_owned(), value))
        })
        .collect()
}

fn percent_decode(s: &str) -> Option<String> {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = s.get(i + 1..i + 3)?;
            out.push(u8::from_str_radix(hex, 16).ok()?);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn raw(endpoint: &str) -> RawTraceSettings {
        RawTraceSettings { endpoint: Some(endpoint.into()), ..Default::default() }
    }

    #[test]
    fn no_endpoint_is_off_and_the_defaults_are_the_specs() {
        assert_eq!(RawTraceSettings::default().validate(), Ok(None));
        assert_eq!(raw("  ").validate(), Ok(None));
        let on = raw("http://localhost:4318").validate().unwrap().unwrap();
        assert_eq!(on.protocol, Protocol::HttpProtobuf);
        assert_eq!(on.sampler, Sampler::ParentBasedAlwaysOn);
        assert!(on.resource_attributes.is_empty());
    }

    #[test]
    fn every_variable_is_read() {
        let settings = RawTraceSettings {
            endpoint: Some("https://collector:4317".into()),
            protocol: Some("grpc".into()),
            service_name: Some("shop".into()),
            sampler: Some("parentbased_traceidratio".into()),
            sampler_arg: Some("0.1".into()),
            resource_attributes: Some("deployment.environment=prod, team=a%2Cb".into()),
        }
        .validate()
        .unwrap()
        .unwrap();
        assert_eq!(settings.protocol, Protocol::Grpc);
        assert_eq!(settings.service_name.as_deref(), Some("shop"));
        assert_eq!(settings.sampler, Sampler::ParentBasedTraceIdRatio(0.1));
        assert_eq!(
            settings.resource_attributes,
            vec![("deployment.environment".into(), "prod".into()), ("team".into(), "a,b".into())]
        );
    }

    #[test]
    fn every_bad_value_is_named() {
        let cases = [
            (raw("localhost:4318"), "OTEL_EXPORTER_OTLP_ENDPOINT"),
            (RawTraceSettings { protocol: Some("http/json".into()), ..raw("http://c") }, "OTEL_EXPORTER_OTLP_PROTOCOL"),
            (RawTraceSettings { sampler: Some("sometimes".into()), ..raw("http://c") }, "OTEL_TRACES_SAMPLER"),
            (
                RawTraceSettings {
                    sampler: Some("traceidratio".into()),
                    sampler_arg: Some("1.5".into()),
                    ..raw("http://c")
                },
                "OTEL_TRACES_SAMPLER_ARG",
            ),
            (
                RawTraceSettings { resource_attributes: Some("novalue".into()), ..raw("http://c") },
                "OTEL_RESOURCE_ATTRIBUTES",
            ),
            (
                RawTraceSettings { resource_attributes: Some("k=%zz".into()), ..raw("http://c") },
                "OTEL_RESOURCE_ATTRIBUTES",
            ),
            // Checked even while tracing is off.
            (RawTraceSettings { protocol: Some("udp".into()), ..Default::default() }, "OTEL_EXPORTER_OTLP_PROTOCOL"),
        ];
        for (raw, setting) in cases {
            assert_eq!(raw.validate().unwrap_err().setting, setting, "{raw:?}");
        }
    }
}
