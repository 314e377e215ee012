//! Connection caps: how many game WebSockets may be open at once, server-wide and per
//! address. A slot is taken before the upgrade is answered and freed when its guard
//! drops, so a refused client never costs a socket beyond its HTTP request.
//!
//! An "address" is an IPv4 address or an IPv6 /64: one IPv6 host is routinely given a
//! whole /64, so counting single IPv6 addresses would let it past every per-address limit.

use std::collections::HashMap;
use std::net::{IpAddr, Ipv6Addr};
use std::sync::Arc;

use parking_lot::Mutex;

/// Why no slot was given.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub(crate) enum CapExceeded {
    /// The server holds as many connections as it is configured for (503).
    #[error("the server is full")]
    Global,
    /// This address holds as many connections as one address may (429).
    #[error("too many connections from this address")]
    PerIp,
}

#[derive(Debug)]
pub(crate) struct ConnCaps {
    max_total: usize,
    max_per_ip: usize,
    /// Open slots in total and by address; one short lock, taken once per connection.
    open: Mutex<(usize, HashMap<IpAddr, usize>)>,
}

/// A taken slot; dropping it gives the slot back.
#[derive(Debug)]
pub(crate) struct ConnSlot {
    caps: Arc<ConnCaps>,
    ip: IpAddr,
}

/// The key an address is counted under by every per-address limit: an IPv4 address as
/// it is (also when it arrives IPv4-mapped), an IPv6 address by its /64.
pub(crate) fn address_key(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V4(_) => ip,
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => IpAddr::V4(v4),
            None => {
                let prefix = v6.to_bits() & !u128::from(u64::MAX);
                IpAddr::V6(Ipv6Addr::from_bits(prefix))
            }
        },
    }
}

impl ConnCaps {
    pub(crate) fn new(max_total: usize, max_per_ip: usize) -> Arc<ConnCaps> {
        Arc::new(ConnCaps {
            max_total,
            max_per_ip,
            open: Mutex::new((0, HashMap::new())),
        })
    }

    pub(crate) fn try_take(self: &Arc<Self>, ip: IpAddr) -> Result<ConnSlot, CapExceeded> {
        let ip = address_key(ip);
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
    #[cfg(test)]
    pub(crate) fn open(&self) -> usize {
        self.open.lock().0
    }
}

impl ConnSlot {
    /// The client's address key (see `address_key`).
    pub(crate) fn address(&self) -> IpAddr {
        self.ip
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
    use std::net::Ipv4Addr;

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

    #[test]
    fn one_ipv6_slash_64_counts_as_one_address() {
        let caps = ConnCaps::new(100, 2);
        let host = |last: u16| IpAddr::V6(Ipv6Addr::new(0x2001, 0xdb8, 1, 2, 0, 0, 0, last));
        let _first = caps.try_take(host(1)).expect("first from the /64");
        let _second = caps.try_take(host(0xbeef)).expect("second from the /64");
        assert_eq!(
            caps.try_take(host(0xcafe)).err(),
            Some(CapExceeded::PerIp),
            "a third address in the same /64 is over the per-address cap"
        );
        let next_prefix = IpAddr::V6(Ipv6Addr::new(0x2001, 0xdb8, 1, 3, 0, 0, 0, 1));
        assert!(
            caps.try_take(next_prefix).is_ok(),
            "another /64 has its own"
        );
    }

    #[test]
    fn ipv4_mapped_addresses_count_as_their_ipv4_address() {
        let v4: IpAddr = [192, 0, 2, 7].into();
        let mapped = IpAddr::V6(Ipv4Addr::new(192, 0, 2, 7).to_ipv6_mapped());
        assert_eq!(address_key(mapped), v4);
        assert_eq!(address_key(v4), v4);
    }
}
