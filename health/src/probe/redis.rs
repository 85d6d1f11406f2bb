//! Redis: optional `AUTH`, then `PING`, which must answer `+PONG`. A few bytes of RESP by hand: a
//! client crate would add a dependency for two commands.

use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;

use crate::config::Secret;

fn command(args: &[&str]) -> Vec<u8> {
    let mut out = format!("*{}\r\n", args.len()).into_bytes();
    for a in args {
        out.extend_from_slice(format!("${}\r\n", a.len()).as_bytes());
        out.extend_from_slice(a.as_bytes());
        out.extend_from_slice(b"\r\n");
    }
    out
}

async fn call(
    conn: &mut BufReader<TcpStream>,
    args: &[&str],
    shown: &str,
) -> Result<String, String> {
    conn.get_mut()
        .write_all(&command(args))
        .await
        .map_err(|e| format!("{shown}: {e}"))?;
    let mut line = String::new();
    let n = conn
        .read_line(&mut line)
        .await
        .map_err(|e| format!("{shown}: {e}"))?;
    if n == 0 {
        return Err(format!("{shown}: connection closed"));
    }
    let line = line.trim_end().chars().take(200).collect::<String>();
    match line.strip_prefix('-') {
        Some(err) => Err(format!("{shown}: {err}")),
        None => Ok(line),
    }
}

pub async fn probe(target: &str, password: Option<&Secret>) -> Result<String, String> {
    let stream = TcpStream::connect(target)
        .await
        .map_err(|e| format!("connect: {e}"))?;
    let mut conn = BufReader::new(stream);
    if let Some(p) = password {
        let r = call(&mut conn, &["AUTH", &p.0], "AUTH").await?;
        if r != "+OK" {
            return Err(format!("AUTH: unexpected reply {r:?}"));
        }
    }
    let r = call(&mut conn, &["PING"], "PING").await?;
    if r != "+PONG" {
        return Err(format!("PING: unexpected reply {r:?}"));
    }
    Ok("PONG".into())
}
