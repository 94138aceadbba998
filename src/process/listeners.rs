//! Listening sockets inherited from the process that started us: systemd's socket
//! activation (`sd_listen_fds(3)`), read by hand.
//!
//! OS concept: a descriptor outlives the process that opened it. A socket handed over
//! across `execve` (see `exec`) is the very same kernel object, with the same accept
//! queue: connections that arrive while the new program starts wait in that queue
//! instead of being refused. Whoever started us (systemd, `systemd-socket-activate`,
//! or an old roundhouse upgrading itself) says which descriptors are ours:
//!
//! - `LISTEN_PID`: the PID they are meant for; anything else means they were meant for
//!   an ancestor and leaked to us through the environment, so we leave them alone;
//! - `LISTEN_FDS`: how many, from descriptor 3;
//! - `LISTEN_FDNAMES` (optional): their names, separated by `:`.
//!
//! Any front (the threaded one today, an event loop later) asks for its listener by
//! name and gets a plain `std::net::TcpListener`: it need not know how it got here.
//! Names roundhouse uses: `listen` for the balancer's `--listen` socket, `admin` for
//! `--admin-listen`, `backend-N` for a simulated backend's, a `[[processes]]` entry's
//! name for its `listen` socket. An unnamed socket (systemd-socket-activate without
//! `--fdname`) is the balancer's.

use std::net::TcpListener;
use std::os::fd::{OwnedFd, RawFd};
use std::sync::atomic::{AtomicBool, Ordering};

use rustix::net::SocketType;
use thiserror::Error;

use super::exec::FIRST_FD;
use super::ready::READY_FD_VAR;
use super::sys;

/// The name of the balancer's own listening socket.
pub const LISTEN: &str = "listen";

/// The name of the admin pages' socket (`--admin-listen`).
pub const ADMIN: &str = "admin";

/// What was wrong with the descriptors we were given.
#[derive(Debug, Error)]
pub enum InheritError {
    #[error("{var}={value:?} is not a number")]
    NotANumber { var: &'static str, value: String },
    #[error("LISTEN_FDS={count} but descriptor {fd} is not open ({source})")]
    NotOpen {
        count: usize,
        fd: RawFd,
        source: std::io::Error,
    },
    #[error("descriptor {fd} ({name}) is not a listening TCP socket")]
    NotAListener { fd: RawFd, name: String },
    #[error("the inherited descriptors were already read")]
    AlreadyRead,
}

/// One inherited socket, until a front takes it.
#[derive(Debug)]
struct Slot {
    fd: RawFd,
    name: String,
    socket: Option<OwnedFd>,
}

/// The descriptors our parent passed, taken one by one.
#[derive(Debug, Default)]
pub struct Inherited {
    slots: Vec<Slot>,
    ready: Option<OwnedFd>,
}

/// Guards `from_env`: each inherited number may be claimed once (see `sys`).
static READ: AtomicBool = AtomicBool::new(false);

impl Inherited {
    /// Nothing inherited (for library users and tests).
    pub fn none() -> Self {
        Inherited::default()
    }

    /// Reads the protocol's environment variables and claims the descriptors they
    /// name. Call it once, early in `main`. The variables stay in our environment (a
    /// multithreaded program cannot safely change its own), but `exec::Launch` never
    /// passes them on, so our children cannot mistake our sockets for theirs.
    pub fn from_env() -> Result<Self, InheritError> {
        if READ.swap(true, Ordering::SeqCst) {
            return Err(InheritError::AlreadyRead);
        }
        let number = |var: &'static str| -> Result<Option<i64>, InheritError> {
            match std::env::var(var) {
                Err(_) => Ok(None),
                Ok(value) => value
                    .trim()
                    .parse()
                    .map(Some)
                    .map_err(|_| InheritError::NotANumber { var, value }),
            }
        };
        let mut inherited = Inherited::default();
        if let Some(fd) = number(READY_FD_VAR)? {
            // A number past the descriptor range is refused, not truncated onto one of ours.
            let fd = RawFd::try_from(fd).map_err(|_| InheritError::NotANumber {
                var: READY_FD_VAR,
                value: fd.to_string(),
            })?;
            match sys::claim_inherited(fd) {
                Ok(owned) => inherited.ready = Some(owned),
                Err(error) => log::warn!("{READY_FD_VAR}={fd}: {error}; not reporting readiness"),
            }
        }
        let ours = number("LISTEN_PID")? == Some(i64::from(std::process::id()));
        let Some(count) = number("LISTEN_FDS")?.filter(|_| ours) else {
            return Ok(inherited);
        };
        let count = count.max(0) as usize;
        let names: Vec<String> = std::env::var("LISTEN_FDNAMES")
            .map(|names| names.split(':').map(str::to_string).collect())
            .unwrap_or_default();
        for index in 0..count {
            let fd = FIRST_FD + index as RawFd;
            let socket =
                sys::claim_inherited(fd).map_err(|source| InheritError::NotOpen { count, fd, source })?;
            let name = names
                .get(index)
                .filter(|name| !name.is_empty() && *name != "unknown")
                .cloned()
                .unwrap_or_default();
            inherited.slots.push(Slot {
                fd,
                name,
                socket: Some(socket),
            });
        }
        Ok(inherited)
    }

    /// The socket named `name`, if one was passed and not taken yet.
    pub fn take(&mut self, name: &str) -> Result<Option<TcpListener>, InheritError> {
        let slot = self
            .slots
            .iter_mut()
            .find(|slot| slot.name == name && slot.socket.is_some());
        slot.map(take_listener).transpose()
    }

    /// The balancer's socket: the one named `listen`, else the first unnamed one.
    pub fn take_listen(&mut self) -> Result<Option<TcpListener>, InheritError> {
        if let Some(listener) = self.take(LISTEN)? {
            return Ok(Some(listener));
        }
        self.take("")
    }

    /// The first socket not taken yet, whatever its name: for a program given one
    /// socket (`roundhouse backend` under a supervisor or systemd).
    pub fn take_any(&mut self) -> Result<Option<TcpListener>, InheritError> {
        let slot = self.slots.iter_mut().find(|slot| slot.socket.is_some());
        slot.map(take_listener).transpose()
    }

    /// Whether this process was started by an upgrade or a supervisor that waits for
    /// `report_ready`.
    pub fn expects_ready(&self) -> bool {
        self.ready.is_some()
    }

    /// Tells the parent we are ready (see `ready`), once; false if nobody asked.
    pub fn report_ready(&mut self) -> std::io::Result<bool> {
        match self.ready.take() {
            Some(pipe) => super::ready::report(pipe).map(|()| true),
            None => Ok(false),
        }
    }

    /// Closes the sockets nobody took (a listener the new configuration no longer
    /// has), naming each in the log.
    pub fn close_unused(&mut self) {
        for slot in &mut self.slots {
            if slot.socket.take().is_some() {
                log::warn!(
                    "inherited descriptor {} ({}) is not used by this configuration; closed",
                    slot.fd,
                    if slot.name.is_empty() {
                        "unnamed"
                    } else {
                        &slot.name
                    }
                );
            }
        }
    }
}

/// Checks that the slot's descriptor is a listening stream socket and hands it out.
fn take_listener(slot: &mut Slot) -> Result<TcpListener, InheritError> {
    let socket = slot.socket.take().expect("the slot was found holding a socket");
    let listening = rustix::net::sockopt::socket_type(&socket).is_ok_and(|kind| kind == SocketType::STREAM)
        && rustix::net::sockopt::socket_acceptconn(&socket).unwrap_or(false);
    if !listening {
        return Err(InheritError::NotAListener {
            fd: slot.fd,
            name: slot.name.clone(),
        });
    }
    let listener = TcpListener::from(socket);
    if listener.local_addr().is_err() {
        return Err(InheritError::NotAListener {
            fd: slot.fd,
            name: slot.name.clone(),
        });
    }
    Ok(listener)
}

/// What a server binding `what` should use: the inherited socket `taken`, or a fresh
/// one from `bind`. Logs which, since an inherited socket overrides the address flag.
pub fn or_bind<E>(
    taken: Option<TcpListener>,
    what: &str,
    bind: impl FnOnce() -> Result<TcpListener, E>,
) -> Result<TcpListener, E> {
    match taken {
        Some(listener) => {
            if let Ok(addr) = listener.local_addr() {
                log::info!("{what}: using the inherited socket on {addr}");
            }
            Ok(listener)
        }
        None => bind(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn slot(name: &str, listener: TcpListener) -> Slot {
        Slot {
            fd: 3,
            name: name.into(),
            socket: Some(OwnedFd::from(listener)),
        }
    }

    #[test]
    fn sockets_are_taken_by_name_and_once() {
        let bind = || TcpListener::bind("127.0.0.1:0").unwrap();
        let (a, b) = (bind(), bind());
        let b_addr = b.local_addr().unwrap();
        let mut inherited = Inherited {
            slots: vec![slot("backend-1", a), slot("", b)],
            ready: None,
        };
        assert!(inherited.take("backend-2").unwrap().is_none());
        // No socket is named `listen`: the unnamed one is the balancer's.
        let listen = inherited.take_listen().unwrap().unwrap();
        assert_eq!(listen.local_addr().unwrap(), b_addr);
        assert!(inherited.take_listen().unwrap().is_none(), "taken once");
        assert!(inherited.take("backend-1").unwrap().is_some());
        assert!(inherited.take_any().unwrap().is_none());
    }

    #[test]
    fn a_socket_that_does_not_listen_is_refused() {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let client = std::net::TcpStream::connect(listener.local_addr().unwrap()).unwrap();
        let mut inherited = Inherited {
            slots: vec![Slot {
                fd: 7,
                name: "listen".into(),
                socket: Some(OwnedFd::from(client)),
            }],
            ready: None,
        };
        let error = inherited.take_listen().unwrap_err();
        assert_eq!(
            error.to_string(),
            "descriptor 7 (listen) is not a listening TCP socket"
        );
    }
}
