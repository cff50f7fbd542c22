//! An agent's stdout and stderr, copied into its attempt's logs as they come, each up to
//! the agent's `max_log_bytes`. Past it the output is read and counted but not kept, and
//! a marker line at the end says how much was cut: a runaway agent cannot fill the
//! disk, and it is never blocked on a full pipe.

use std::fs::File;
use std::io::Write as _;

use tokio::io::{AsyncRead, AsyncReadExt};

/// Copies `from` into `to` until end of file, keeping the first `cap` bytes; `name` is
/// for the marker (`stdout`, `stderr`). A log that cannot be written is given up on,
/// but the pipe is still drained.
pub(crate) async fn capture(mut from: impl AsyncRead + Unpin, mut to: File, cap: u64, name: &str) {
    let mut buf = vec![0u8; 64 * 1024];
    let (mut kept, mut cut) = (0u64, 0u64);
    let mut writable = true;
    loop {
        let n = match from.read(&mut buf).await {
            Ok(0) | Err(_) => break,
            Ok(n) => n,
        };
        let keep = (cap - kept).min(n as u64) as usize;
        if keep > 0 && writable {
            writable = to.write_all(&buf[..keep]).is_ok();
        }
        kept += keep as u64;
        cut += (n - keep) as u64;
    }
    if cut > 0 && writable {
        let _ = write!(
            to,
            "\n[baton: {cut} more bytes of {name} were cut here: max_log_bytes = {cap}]\n"
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn output_past_the_cap_is_counted_and_cut_with_a_marker() {
        let tmp = tempfile::tempdir().unwrap();
        let path = tmp.path().join("stdout.log");
        let input = vec![b'x'; 100_000];
        capture(&input[..], File::create(&path).unwrap(), 1000, "stdout").await;
        let log = std::fs::read_to_string(&path).unwrap();
        assert!(log.starts_with(&"x".repeat(1000)));
        assert!(log.ends_with(
            "\n[baton: 99000 more bytes of stdout were cut here: max_log_bytes = 1000]\n"
        ));
        capture(
            &b"short\n"[..],
            File::create(&path).unwrap(),
            1000,
            "stdout",
        )
        .await;
        assert_eq!(std::fs::read_to_string(&path).unwrap(), "short\n");
    }
}
