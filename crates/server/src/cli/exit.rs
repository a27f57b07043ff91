//! The exit codes of the client commands and `inspect`, and the one place errors are mapped
//! to them.

use std::process::ExitCode;

use brisk_client::Failure;

use super::CallError;

/// What a command's exit code tells a script. Every code is distinct, so a script can tell
/// "retry later" (unavailable) from "read it back first" (indeterminate) from "give up"
/// (failed).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Exit {
    /// The command did what was asked.
    Success = 0,
    /// The command ran and the answer is no: `get` found no value, `inspect` found a
    /// problem.
    Negative = 1,
    /// The command line is invalid: an unknown flag, a malformed value, an unusable endpoint
    /// address. clap's own exit code for usage errors.
    Usage = 2,
    /// `txn` conflicted with a later commit and was aborted: nothing was written, and running
    /// it again (with a new start timestamp) may succeed.
    Conflict = 3,
    /// No node could serve the request before `--timeout` (none reachable, no leader):
    /// nothing was applied, and trying again later may succeed.
    Unavailable = 4,
    /// A write may or may not have been applied (the answer was lost or came too late): read
    /// the key back before writing again.
    Indeterminate = 5,
    /// Anything else: the server refused the request (invalid argument, not found, limit),
    /// a file could not be read, the output could not be written.
    Failed = 6,
}

/// The exit-code table of `brisk --help` and the man page. A unit test keeps it in step with
/// [`Exit`].
pub const EXIT_CODES: &str = "\
Exit codes of the client commands and inspect:
  0  success
  1  the answer is no: get found no value, inspect found a problem
  2  usage error: unknown flag, malformed value, unusable endpoint address
  3  transaction conflict: txn was aborted and wrote nothing; it may be run again
  4  unavailable: no node or no leader before --timeout; nothing was applied
  5  indeterminate: the write may or may not have been applied; read it back
  6  failed: anything else (a refused request, an I/O error)
With --json a client command prints one JSON document to stdout; errors always go to stderr.";

impl From<Exit> for ExitCode {
    fn from(e: Exit) -> ExitCode {
        ExitCode::from(e as u8)
    }
}

impl Exit {
    /// Every code, in order.
    pub const ALL: [Exit; 7] = [
        Exit::Success,
        Exit::Negative,
        Exit::Usage,
        Exit::Conflict,
        Exit::Unavailable,
        Exit::Indeterminate,
        Exit::Failed,
    ];

    /// The code of a command that failed with `err`: the first cause in its chain that says
    /// what is known of the outcome decides; anything unrecognised is [`Exit::Failed`].
    pub fn of(err: &anyhow::Error) -> Exit {
        for cause in err.chain() {
            if let Some(CallError(e)) = cause.downcast_ref::<CallError>() {
                return Exit::of_client(e);
            }
            if let Some(e) = cause.downcast_ref::<brisk_client::Error>() {
                return Exit::of_client(e);
            }
            if let Some(s) = cause.downcast_ref::<tonic::Status>() {
                return Exit::of_status(s);
            }
            if cause.is::<tonic::transport::Error>() {
                // Only a connection is made outside a call: no request was sent.
                return Exit::Unavailable;
            }
            if cause.is::<clap::Error>() {
                return Exit::Usage;
            }
        }
        Exit::Failed
    }

    fn of_client(e: &brisk_client::Error) -> Exit {
        use brisk_client::Error as E;
        match e {
            E::Rejected(_) | E::Malformed(_) => Exit::Failed,
            E::Unknown(_) => Exit::Indeterminate,
            E::GaveUp(_) => Exit::Unavailable,
            E::Endpoint { .. } | E::NoEndpoints => Exit::Usage,
        }
    }

    /// A status from a call made without [`brisk_client::Client`] (one node, no retries).
    fn of_status(s: &tonic::Status) -> Exit {
        match brisk_client::classify(s) {
            Failure::NotApplied => Exit::Unavailable,
            Failure::Unknown => Exit::Indeterminate,
            Failure::Rejected => Exit::Failed,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tonic::Status;

    #[test]
    fn the_codes_are_distinct_and_the_table_lists_each() {
        for (i, e) in Exit::ALL.iter().enumerate() {
            assert_eq!(*e as usize, i, "{e:?}");
            assert!(
                EXIT_CODES.contains(&format!("\n  {i}  ")),
                "the exit-code table lacks {i} ({e:?})"
            );
        }
        assert!(!EXIT_CODES.contains(&format!("\n  {}  ", Exit::ALL.len())));
    }

    #[test]
    fn client_errors_map_to_what_is_known_of_the_outcome() {
        use brisk_client::Error as E;
        let of = |e: E| Exit::of(&CallError(e).into());
        assert_eq!(
            of(E::Rejected(Status::invalid_argument("empty key"))),
            Exit::Failed
        );
        assert_eq!(
            of(E::Unknown(Status::deadline_exceeded("late"))),
            Exit::Indeterminate
        );
        assert_eq!(
            of(E::GaveUp(Status::unavailable("no leader"))),
            Exit::Unavailable
        );
        assert_eq!(of(E::NoEndpoints), Exit::Usage);
        assert_eq!(of(E::Malformed("no result")), Exit::Failed);
    }

    #[test]
    fn context_does_not_hide_the_cause() {
        let e = anyhow::Error::new(CallError(brisk_client::Error::GaveUp(Status::unavailable(
            "no leader",
        ))))
        .context("snapshotting");
        assert_eq!(Exit::of(&e), Exit::Unavailable);
        assert_eq!(Exit::of(&anyhow::anyhow!("disk full")), Exit::Failed);
    }

    #[test]
    fn a_single_nodes_status_is_classified_like_the_clients() {
        let refused = std::io::Error::from(std::io::ErrorKind::ConnectionRefused);
        let s = Status::from_error(Box::new(tonic::ConnectError(Box::new(refused))));
        assert_eq!(Exit::of(&s.into()), Exit::Unavailable);
        assert_eq!(
            Exit::of(&Status::internal("fatal").into()),
            Exit::Indeterminate
        );
        assert_eq!(
            Exit::of(&Status::failed_precondition("not a member").into()),
            Exit::Failed
        );
    }
}
