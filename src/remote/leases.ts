/** A lease held on one `(name, key)`: the owner and the fencing token the database gave it. */
export interface Lease {
  readonly name: string;
  readonly key: string;
  readonly owner: string;
  /** From the sequence `cachet_lease_tokens`: a later holder always has a larger token. */
  readonly token: string;
}
