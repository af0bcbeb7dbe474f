//! What the batch forms of the services' steps share: each item of a batch
//! is answered as its single call would answer it, the items the batch
//! could not settle going through that single call.

use std::collections::HashSet;
use std::future::Future;
use std::hash::Hash;

use crate::error::{Error, Result};

/// A store's per-item answers to a batch call of `asked` items, checked to
/// hold one answer per item: pairing a short answer with the items would
/// give some of them another's outcome.
///
/// # Errors
/// [`Error::Internal`] naming `context` when the count differs.
pub(crate) fn one_answer_each<T>(answers: Vec<T>, asked: usize, context: &'static str) -> Result<Vec<T>> {
    if answers.len() == asked {
        Ok(answers)
    } else {
        Err(Error::internal(context, format!("the store answered for {} of {asked} items", answers.len())))
    }
}

/// The rule of a batch port method that takes each key once.
///
/// # Errors
/// [`Error::Validation`] on `field` with `message` when a key repeats.
pub(crate) fn distinct<K: Eq + Hash>(keys: impl IntoIterator<Item = K>, field: &str, message: &str) -> Result<()> {
    let mut seen = HashSet::new();
    if keys.into_iter().all(|k| seen.insert(k)) { Ok(()) } else { Err(Error::invalid(field, message)) }
}

/// Fills in every item the batch left unanswered with `answer(index)`,
/// concurrently, and returns all the answers in order.
pub(crate) async fn answer_rest<T, F, Fut>(mut answers: Vec<Option<T>>, mut answer: F) -> Vec<T>
where
    F: FnMut(usize) -> Fut,
    Fut: Future<Output = T>,
{
    let rest: Vec<usize> = answers.iter().enumerate().filter(|(_, a)| a.is_none()).map(|(i, _)| i).collect();
    let found = futures::future::join_all(rest.iter().map(|&i| answer(i))).await;
    for (i, found) in rest.into_iter().zip(found) {
        answers[i] = Some(found);
    }
    answers.into_iter().map(|a| a.expect("every unanswered item was just answered")).collect()
}
