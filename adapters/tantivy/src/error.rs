//! Tantivy failures as [`bazaar_core::Error`]s, mapped in one place.

use bazaar_core::Error;
use tantivy::TantivyError;

/// What the errors name as the unavailable dependency.
pub(crate) const WHAT: &str = "search index";

/// Maps a tantivy error met while doing `context`: storage trouble (I/O, a
/// directory that cannot be opened, read or written, the writer lock held by
/// another process) is [`Error::Unavailable`], since retrying or fixing the
/// disk can cure it; anything else (corruption, a schema or argument bug, a
/// dead indexing thread) is [`Error::Internal`].
pub(crate) fn index_err(context: &'static str) -> impl FnOnce(TantivyError) -> Error {
    move |e| match e {
        TantivyError::IoError(_)
        | TantivyError::OpenDirectoryError(_)
        | TantivyError::OpenReadError(_)
        | TantivyError::OpenWriteError(_)
        | TantivyError::LockFailure(..) => Error::unavailable(WHAT, e),
        other => Error::internal(context, other),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use bazaar_core::ErrorKind;

    #[test]
    fn storage_trouble_is_unavailable_and_the_rest_internal() {
        let io = TantivyError::IoError(std::sync::Arc::new(std::io::Error::other("disk")));
        assert_eq!(index_err("x")(io).kind(), ErrorKind::Unavailable);
        let bug = TantivyError::InvalidArgument("bad".into());
        assert_eq!(index_err("x")(bug).kind(), ErrorKind::Internal);
    }
}
