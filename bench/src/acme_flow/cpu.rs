//! CPU time of a process and its descendants from /proc, sampled before and after the measured window.

use std::collections::HashMap;

use anyhow::{Context, Result, anyhow};

/// Clock ticks per second for /proc's time fields (`getconf CLK_TCK`; 100 on every Linux we run on).
pub fn clock_ticks() -> f64 {
    std::process::Command::new("getconf")
        .arg("CLK_TCK")
        .output()
        .ok()
        .and_then(|o| String::from_utf8_lossy(&o.stdout).trim().parse::<f64>().ok())
        .filter(|t| *t > 0.0)
        .unwrap_or(100.0)
}

struct Stat {
    ppid: u32,
    /// utime + stime + cutime + cstime: the process, and children it has reaped.
    ticks: u64,
}

/// Parses /proc/PID/stat; the command name is in parentheses and may contain spaces, so fields are counted from
/// the last ')'.
fn read_stat(pid: &str) -> Result<Stat> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/stat")).with_context(|| format!("/proc/{pid}/stat"))?;
    let rest = text.rsplit_once(')').map(|(_, r)| r).ok_or_else(|| anyhow!("malformed /proc/{pid}/stat"))?;
    // After ')': state is field 3 of proc(5), so field n is at index n - 3.
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let field = |n: usize| -> Result<u64> {
        fields.get(n - 3).ok_or_else(|| anyhow!("short /proc/{pid}/stat"))?.parse::<u64>().map_err(Into::into)
    };
    Ok(Stat { ppid: field(4)? as u32, ticks: field(14)? + field(15)? + field(16)? + field(17)? })
}

/// CPU seconds used so far by `pid` and every live descendant (a server that forks workers is measured whole).
pub fn tree_seconds(pid: u32, ticks_per_second: f64) -> Result<f64> {
    let root = read_stat(&pid.to_string())?;
    let mut children: HashMap<u32, Vec<(u32, u64)>> = HashMap::new();
    if let Ok(entries) = std::fs::read_dir("/proc") {
        for entry in entries.flatten() {
            let name = entry.file_name();
            let Some(name) = name.to_str() else { continue };
            let Ok(child_pid) = name.parse::<u32>() else { continue };
            // Processes come and go while we scan; a vanished one simply does not count.
            if let Ok(stat) = read_stat(name) {
                children.entry(stat.ppid).or_default().push((child_pid, stat.ticks));
            }
        }
    }
    let mut total = root.ticks;
    let mut stack = vec![pid];
    while let Some(parent) = stack.pop() {
        for &(child, ticks) in children.get(&parent).map(Vec::as_slice).unwrap_or(&[]) {
            total += ticks;
            stack.push(child);
        }
    }
    Ok(total as f64 / ticks_per_second)
}

/// CPU seconds of this process (the load generator and the http-01 responder).
pub fn own_seconds(ticks_per_second: f64) -> Result<f64> {
    Ok(read_stat("self")?.ticks as f64 / ticks_per_second)
}
