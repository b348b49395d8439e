import type { Database } from "./database.js";
import type { Lease } from "./leases.js";

/**
 * Leases on PostgreSQL. Every time is the database's (`now()`), never a client's clock. The token is drawn
 * inside `ON CONFLICT … DO UPDATE`, that is after the row lock, so tokens grow in the order holders get the
 * lease even under contention (drawn before the lock, two contenders could get them the other way round).
 */
export class PgLeases {
  constructor(
    private readonly database: Database,
    private readonly expirySeconds: number,
  ) {}

  /** Takes the lease when it is free or expired; undefined while another holder's lease runs. */
  async tryAcquire(name: string, key: string, owner: string): Promise<Lease | undefined> {
    const result = await this.database.query<{ token: string }>(
      `INSERT INTO cachet_leases AS l (name, key, owner, token, expires_at)
       VALUES ($1, $2, $3, nextval('cachet_lease_tokens'), now() + make_interval(secs => $4))
       ON CONFLICT (name, key) DO UPDATE
         SET owner = EXCLUDED.owner, token = nextval('cachet_lease_tokens'), expires_at = EXCLUDED.expires_at
         WHERE l.expires_at < now()
       RETURNING token`,
      [name, key, owner, this.expirySeconds],
    );
    const token = result.rows[0]?.token;
    return token === undefined ? undefined : { name, key, owner, token: String(token) };
  }

  /** Extends the lease by the expiry from now; false when it is no longer this holder's (taken over). */
  async extend(lease: Lease): Promise<boolean> {
    const result = await this.database.query(
      `UPDATE cachet_leases SET expires_at = now() + make_interval(secs => $5)
       WHERE name = $1 AND key = $2 AND owner = $3 AND token = $4`,
      [lease.name, lease.key, lease.owner, lease.token, this.expirySeconds],
    );
    return result.rowCount === 1;
  }

  /** Gives the lease up at once (only if it is still this holder's). */
  async release(lease: Lease): Promise<void> {
    await this.database.query("DELETE FROM cachet_leases WHERE name = $1 AND key = $2 AND owner = $3 AND token = $4", [
      lease.name,
      lease.key,
      lease.owner,
      lease.token,
    ]);
  }
}

/**
 * The fence, run inside the transaction that commits an entry: locks the lease row and checks that `lease`'s
 * owner AND token still hold it. A takeover needs the same row lock, so either the commit lands first (and the
 * next holder finds the result) or the takeover does (and this check fails).
 */
export const FENCE_CHECK = `SELECT 1 FROM cachet_leases WHERE name = $1 AND key = $2 AND owner = $3 AND token = $4 FOR UPDATE`;
