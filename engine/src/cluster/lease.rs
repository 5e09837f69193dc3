//! A named lease in Redis: one node at a time does a job (move the event
//! outbox into the database, deliver one webhook). The holder renews it
//! every third of its TTL; a node that dies lets it lapse, and another
//! takes the job over. Each acquisition gets a new epoch, so work that
//! must not be done twice can be fenced in the database too.
//!
//! An embedded node has nobody to share with: its [`Lease`] always holds.

use redis::aio::ConnectionManager;
use redis::Script;
use std::sync::LazyLock;
use std::time::{Duration, Instant};

/// KEYS: the lease, its epoch counter. ARGV: me, TTL ms.
/// Returns the epoch if this node holds the lease (it had it, or it was
/// free), else 0.
static ACQUIRE: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r"
local holder = redis.call('GET', KEYS[1])
if holder == false then
  local epoch = redis.call('INCR', KEYS[2])
  redis.call('SET', KEYS[1], ARGV[1] .. '|' .. epoch, 'PX', ARGV[2])
  return epoch
end
local sep = string.find(holder, '|', 1, true)
if sep and string.sub(holder, 1, sep - 1) == ARGV[1] then
  redis.call('PEXPIRE', KEYS[1], ARGV[2])
  return tonumber(string.sub(holder, sep + 1))
end
return 0
",
    )
});

/// KEYS: the lease. ARGV: me|epoch. Deletes it if still ours.
static RELEASE: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r"
if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('DEL', KEYS[1])
end
return 0
",
    )
});

struct Shared {
    conn: ConnectionManager,
    key: String,
    epoch_key: String,
    me: String,
    ttl: Duration,
}

/// A job's lease, as this node sees it.
pub struct Lease {
    shared: Option<Shared>,
    epoch: i64,
    renewed: Option<Instant>,
}

impl Lease {
    /// One process: always held, epoch 1.
    pub fn local() -> Self {
        Self {
            shared: None,
            epoch: 1,
            renewed: Some(Instant::now()),
        }
    }

    pub fn shared(
        conn: ConnectionManager,
        key: String,
        epoch_key: String,
        me: String,
        ttl: Duration,
    ) -> Self {
        Self {
            shared: Some(Shared {
                conn,
                key,
                epoch_key,
                me,
                ttl,
            }),
            epoch: 0,
            renewed: None,
        }
    }

    /// The epoch of this node's hold (0 while it holds none).
    pub fn epoch(&self) -> i64 {
        self.epoch
    }

    /// Takes the lease if it is free, or renews it if it is ours. Returns
    /// whether this node holds it now.
    pub async fn acquire(&mut self) -> bool {
        let Some(shared) = &mut self.shared else {
            return true;
        };
        let ttl_ms = u64::try_from(shared.ttl.as_millis()).unwrap_or(u64::MAX);
        let answer: redis::RedisResult<i64> = ACQUIRE
            .key(&shared.key)
            .key(&shared.epoch_key)
            .arg(&shared.me)
            .arg(ttl_ms)
            .invoke_async(&mut shared.conn)
            .await;
        match answer {
            Ok(epoch) if epoch > 0 => {
                if self.epoch != 0 && self.epoch != epoch {
                    // Ours again, but after someone else's: a new hold.
                    tracing::info!(lease = %shared.key, epoch, "lease taken again");
                }
                self.epoch = epoch;
                self.renewed = Some(Instant::now());
                true
            }
            Ok(_) => {
                self.epoch = 0;
                self.renewed = None;
                false
            }
            Err(error) => {
                tracing::warn!(lease = %shared.key, %error, "lease not renewed");
                // Held until its TTL would have run out, not beyond.
                if self
                    .renewed
                    .is_none_or(|renewed| renewed.elapsed() >= shared.ttl)
                {
                    self.epoch = 0;
                    self.renewed = None;
                }
                self.epoch != 0
            }
        }
    }

    /// Renews the lease when a third of its TTL has passed since the last
    /// renewal; returns whether this node still holds it.
    pub async fn keep(&mut self) -> bool {
        let Some(shared) = &self.shared else {
            return true;
        };
        let due = self
            .renewed
            .is_none_or(|renewed| renewed.elapsed() >= shared.ttl / 3);
        if due {
            self.acquire().await
        } else {
            self.epoch != 0
        }
    }

    /// Gives the lease up (the job stopped here), so another node need not
    /// wait for it to lapse.
    pub async fn release(&mut self) {
        let epoch = self.epoch;
        self.epoch = 0;
        let Some(shared) = &mut self.shared else {
            return;
        };
        if epoch == 0 {
            return;
        }
        let mine = format!("{}|{epoch}", shared.me);
        let _: redis::RedisResult<i64> = RELEASE
            .key(&shared.key)
            .arg(mine)
            .invoke_async(&mut shared.conn)
            .await;
    }
}
