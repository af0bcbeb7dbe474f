//! Classifying a call's result as success, failure or neither.

/// How a finished call counts toward the breaker's rates.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Outcome {
    /// Counts as a successful call.
    Success,
    /// Counts as a failed call.
    Failure,
    /// Not counted at all (e.g. a client-side validation error); a half-open
    /// probe classified this way gives its permit back.
    Ignore,
}

/// Decides the [`Outcome`] of a call from its whole result, so an `Ok`
/// value can be a failure (an HTTP 503 response) and an `Err` can be
/// ignored (a 404 that says nothing about the upstream's health).
///
/// Closures `Fn(&Result<T, E>) -> Outcome` are classifiers.
///
/// # Example
/// ```
/// use bazaar_core::resilience::circuit_breaker::{Classifier, Outcome};
///
/// let by_status = |r: &Result<u16, std::io::Error>| match r {
///     Ok(status) if *status >= 500 => Outcome::Failure,
///     Ok(_) => Outcome::Success,
///     Err(_) => Outcome::Failure,
/// };
/// assert_eq!(by_status.classify(&Ok(503)), Outcome::Failure);
/// assert_eq!(by_status.classify(&Ok(200)), Outcome::Success);
/// ```
pub trait Classifier<T, E> {
    /// The outcome of `result`.
    fn classify(&self, result: &Result<T, E>) -> Outcome;
}

impl<T, E, F> Classifier<T, E> for F
where
    F: Fn(&Result<T, E>) -> Outcome,
{
    fn classify(&self, result: &Result<T, E>) -> Outcome {
        self(result)
    }
}

/// `Ok` is a success, `Err` a failure.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct DefaultClassifier;

impl<T, E> Classifier<T, E> for DefaultClassifier {
    fn classify(&self, result: &Result<T, E>) -> Outcome {
        match result {
            Ok(_) => Outcome::Success,
            Err(_) => Outcome::Failure,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_classifier_maps_ok_and_err() {
        assert_eq!(DefaultClassifier.classify(&Ok::<_, ()>(1)), Outcome::Success);
        assert_eq!(DefaultClassifier.classify(&Err::<(), _>(1)), Outcome::Failure);
    }

    #[test]
    fn closures_see_ok_values() {
        let c = |r: &Result<u16, ()>| if matches!(r, Ok(503)) { Outcome::Failure } else { Outcome::Success };
        assert_eq!(c.classify(&Ok(503)), Outcome::Failure);
        assert_eq!(c.classify(&Ok(200)), Outcome::Success);
    }
}
