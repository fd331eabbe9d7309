/**
 * Every limit and timeout of the protocol, in one place. Each is checked before anything is allocated
 * on the strength of a peer's claim.
 */

/** Plaintext header: type u8 | flags u8 | stream_id u32 BE. */
export const PLAINTEXT_HEADER_LEN = 6;
/** Largest payload of one message. Data is cut into frames of at most this many bytes. */
export const MAX_PAYLOAD = 256 * 1024;
/** Largest plaintext (header + payload), and so the largest size a compressed body may declare. */
export const MAX_PLAINTEXT = PLAINTEXT_HEADER_LEN + MAX_PAYLOAD;
/** Poly1305 tag length. */
export const TAG_LEN = 16;
/** Largest value of a frame's length field: codec byte + plaintext (stored) + tag. A sender never
 * sends a compressed body larger than the stored one, so this bounds both. */
export const MAX_FRAME_LEN = 1 + MAX_PLAINTEXT + TAG_LEN;
/** Largest cleartext handshake frame (ClientHello, ServerHello, DataHello, a cleartext AuthFail). */
export const MAX_HANDSHAKE_FRAME_LEN = 1024;
/** Longest UTF-8 string field (error messages, addresses), in bytes. */
export const MAX_STRING_LEN = 1024;
/** Longest tunnel name, in bytes. */
export const MAX_TUNNEL_NAME_LEN = 64;
/** Most address blocks in an OpenTunnel's permit-from list. */
export const MAX_PERMIT_FROM = 32;
/** Most port ranges an AuthOk lists. */
export const MAX_AUTH_PORT_RANGES = 256;

/** A peer must finish its whole handshake within this many milliseconds. */
export const HANDSHAKE_TIMEOUT_MS = 10_000;
/** A new connection must deliver its first whole frame (a hello) within this, or it is closed. */
export const FIRST_FRAME_TIMEOUT_MS = 2_500;
/** Connections that have not finished a handshake, per server. More are refused at accept. */
export const MAX_UNAUTHENTICATED_CONNECTIONS = 256;
/**
 * Connections that have not finished a handshake, per source address (an IPv4 address, an IPv6 /64):
 * one address cannot take the whole server-wide budget and lock the allowed client out.
 */
export const MAX_UNAUTHENTICATED_PER_SOURCE = 8;
/** Visitors of one session waiting for a data channel. More are refused at once. */
export const MAX_WAITING_VISITORS = 1024;
/** A visitor waits this long for a data channel while the client answers, then is refused. */
export const CHANNEL_WAIT_TIMEOUT_MS = 5_000;
/** Proven idle data channels the server keeps per session; one coming back beyond this is ended. */
export const MAX_IDLE_DATA_CHANNELS = 64;
/** Data channels of one session between DataHello and their proof, from the client's own address. */
export const MAX_UNPROVEN_DATA_CHANNELS = 64;
/** The same, from any other address (a replayed DataHello): a small budget of its own. */
export const MAX_UNPROVEN_FOREIGN_DATA_CHANNELS = 8;
/** A data channel must prove itself (its first keyed frame) this long after DataHelloAck. */
export const DATA_PROOF_TIMEOUT_MS = 1_500;
/** Most channels one ChannelsWanted asks for. */
export const MAX_CHANNELS_WANTED = 64;
/** Tunnels one session may hold open. */
export const MAX_TUNNELS_PER_SESSION = 256;
/**
 * Default heartbeat interval, sent in AuthOk. The client heartbeats its control channel and every
 * idle data channel this often; the server drops a session (and an idle channel) silent for three.
 */
export const HEARTBEAT_INTERVAL_MS = 5_000;
/** Silence after which the server probes a session before trusting it with a visitor. */
export const LIVENESS_FRESH_MS = 500;
/**
 * A probe (a Heartbeat from the server) before a second login with the same key replaces the session
 * holding it: a session that does not answer within this is stale and is replaced.
 */
export const PROBE_TIMEOUT_MS = 1_000;
/**
 * A probe before visitors are trusted to a silent client must be answered within this, or the
 * session is suspect (its waiting visitors are reset, new ones on arrival). The shortest deadline,
 * not the usual one: a client that is alive but slow answers late, and refusing its visitors makes
 * the tunnel stop working for them. 2 s covers an event loop held up 1.5 s (a loaded machine, a GC
 * pause) and one lost segment on a 300 ms link; at 1 s, a client stopped 1.3 s at a time lost every
 * visitor that came meanwhile. A dead client's first visitors wait this long; later ones are refused
 * on arrival.
 */
export const LIVENESS_PROBE_TIMEOUT_MS = 2_000;
/** On a long link that deadline is this many times its round trip (the shortest recent answer). */
export const PROBE_RTT_FACTOR = 4;
/** The longest deadline of that probe, however slow the answers were (below CHANNEL_WAIT_TIMEOUT_MS). */
export const PROBE_TIMEOUT_MAX_MS = 4_000;
/** A connection we end is destroyed this long after, if the peer has not closed it by then. */
export const CHANNEL_LINGER_MS = 1000;
/**
 * A connection whose peer stops sending in the middle of a frame is closed after this long without a
 * byte. Longer than any partition a transfer should survive; a peer that ends the stream inside a
 * frame is closed at once instead.
 */
export const PARTIAL_FRAME_TIMEOUT_MS = 120_000;
