//! Connection caps: how many game WebSockets may be open at once, server-wide and per
//! IP address. A slot is taken before the upgrade is answered and freed when its guard
//! drops, so a refused client never costs a socket beyond its HTTP request.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Arc;

use parking_lot::Mutex;

/// Why no slot was given.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum CapExceeded {
    /// The server holds as many connections as it is configured for (503).
    #[error("the server is full")]
    Global,
    /// This address holds as many connections as one address may (429).
    #[error("too many connections from this address")]
    PerIp,
}

#[derive(Debug)]
pub struct ConnCaps {
    max_total: usize,
    max_per_ip: usize,
    /// Open slots in total and by address; one short lock, taken once per connection.
    open: Mutex<(usize, HashMap<IpAddr, usize>)>,
}

/// A taken slot; dropping it gives the slot back.
#[derive(Debug)]
pub struct ConnSlot {
    caps: Arc<ConnCaps>,
    ip: IpAddr,
}

impl ConnCaps {
    pub fn new(max_total: usize, max_per_ip: usize) -> Arc<ConnCaps> {
        Arc::new(ConnCaps {
            max_total,
            max_per_ip,
            open: Mutex::new((0, HashMap::new())),
        })
    }

    pub fn try_take(self: &Arc<Self>, ip: IpAddr) -> Result<ConnSlot, CapExceeded> {
        let mut open = self.open.lock();
        let (total, by_ip) = &mut *open;
        if *total >= self.max_total {
            return Err(CapExceeded::Global);
        }
        let from_ip = by_ip.entry(ip).or_insert(0);
        if *from_ip >= self.max_per_ip {
            return Err(CapExceeded::PerIp);
        }
        *from_ip += 1;
        *total += 1;
        Ok(ConnSlot {
            caps: Arc::clone(self),
            ip,
        })
    }

    /// Slots taken right now.
    pub fn open(&self) -> usize {
        self.open.lock().0
    }
}

impl Drop for ConnSlot {
    fn drop(&mut self) {
        let mut open = self.caps.open.lock();
        let (total, by_ip) = &mut *open;
        *total = total.saturating_sub(1);
        if let Some(from_ip) = by_ip.get_mut(&self.ip) {
            *from_ip -= 1;
            // Forget idle addresses, so the map stays as small as the set of live clients.
            if *from_ip == 0 {
                by_ip.remove(&self.ip);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn caps_count_per_ip_and_in_total_and_free_on_drop() {
        let caps = ConnCaps::new(3, 2);
        let a: IpAddr = [10, 0, 0, 1].into();
        let b: IpAddr = [10, 0, 0, 2].into();
        let first = caps.try_take(a).expect("first from a");
        let _second = caps.try_take(a).expect("second from a");
        assert_eq!(caps.try_take(a).err(), Some(CapExceeded::PerIp));
        let _third = caps.try_take(b).expect("b has its own allowance");
        assert_eq!(caps.try_take(b).err(), Some(CapExceeded::Global));
        drop(first);
        assert!(caps.try_take(a).is_ok(), "a dropped slot is free again");
        assert_eq!(caps.open(), 2, "the probe slot was dropped again");
    }
}
