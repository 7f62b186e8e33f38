// Bounds of the agents' format-2 calls (api/agent-packs.routes.ts, api/agent-restore-packs.routes.ts),
// shared with the agent, which must stay within them. Plain numbers: the agent loads this while idle,
// when no native addon may.

/** Chunk ids asked about in one call: 10,000 are some 660 KB of JSON, under the API's 1 MiB body limit. */
export const chunkIdsPerAsk = 10_000;
/**
 * Chunks a restoring or verifying agent asks the places of in one call: each place answered is up to
 * some 200 bytes of JSON, and the answer must fit the agent's 1 MiB limit on what it reads
 * (agent/http-request.ts), where 10,000 did not (a 10 GiB snapshot's restore failed on it).
 */
export const chunkPlacesPerAsk = 4_000;

/**
 * Blobs in one pack. Its "stored" report lists each (up to some 140 bytes of JSON), and must fit the
 * API's 1 MiB body limit: a writer closes a pack at this count even before it reaches its target size.
 */
export const maxPackBlobs = 5_000;

/**
 * Packs of one backup registered but not yet reported stored. A writer has one or two in flight; the
 * bound keeps an agent from filling the index with rows of packs it never uploads.
 */
export const maxPacksInFlight = 32;

/**
 * Packs a restoring agent asks access for in one call: each costs the control plane a ranged read of
 * the pack's preamble and a presigned URL, so a call stays short whatever the snapshot's size.
 */
export const packAccessPerAsk = 64;

/**
 * Damaged copies a verifying agent reports in one call: the control plane reads each blob again
 * before it marks it bad, so a call stays short however much of a snapshot is damaged.
 */
export const damageReportCopies = 32;
