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

/** A peer must finish its handshake within this many milliseconds. */
export const HANDSHAKE_TIMEOUT_MS = 10_000;
/** Connections that have not finished a handshake, per server. More are refused at accept. */
export const MAX_UNAUTHENTICATED_CONNECTIONS = 64;
/** External connections waiting for their data channel, per server. */
export const MAX_PENDING_PAIRINGS = 1024;
/** An external connection waits this long for its data channel, then is closed. */
export const PAIRING_TIMEOUT_MS = 10_000;
/** Keyed data channels a client may hold idle (pre-opened) at once, per session. */
export const MAX_IDLE_DATA_CHANNELS = 64;
/** Tunnels one session may hold open. */
export const MAX_TUNNELS_PER_SESSION = 256;
/** Default heartbeat interval. */
export const HEARTBEAT_INTERVAL_MS = 30_000;
/** Bytes a relay may buffer towards a slow writer before it stops reading the other side. */
export const RELAY_HIGH_WATER = 1024 * 1024;
