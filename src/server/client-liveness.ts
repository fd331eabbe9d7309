/**
 * Whether a session's client is still there, as the ChannelBroker needs to know before it holds a
 * visitor: while visitors wait for a channel (or were assigned one and heard nothing back) and the
 * client has been silent for a moment, probe it on the control channel; an unanswered probe makes the
 * client suspect until its next sign of life, and the broker refuses visitors at once meanwhile.
 *
 * A client that is alive but slow must not be taken for a dead one: its visitors would be refused
 * while the tunnel works. So a probe counts as unanswered only when nothing at all came from the
 * client (on any of its channels) since it was sent, its deadline grows with the round trip the
 * client's earlier answers showed (probeDeadlineMs), and the server reads what is waiting in its sockets before
 * it gives its verdict (ControlSession.probe), in case its own event loop was the slow one.
 */
import { LIVENESS_PROBE_TIMEOUT_MS, PROBE_RTT_FACTOR, PROBE_TIMEOUT_MAX_MS } from '../protocol/limits.js';

/**
 * The deadline of a probe, given the time the client's answers take on its link (ms, see
 * AnswerTime): PROBE_RTT_FACTOR times that, never below LIVENESS_PROBE_TIMEOUT_MS nor above
 * PROBE_TIMEOUT_MAX_MS.
 */
export function probeDeadlineMs(answerMs: number | undefined): number {
  const adaptive = answerMs === undefined ? 0 : PROBE_RTT_FACTOR * answerMs;
  return Math.min(PROBE_TIMEOUT_MAX_MS, Math.max(LIVENESS_PROBE_TIMEOUT_MS, Math.round(adaptive)));
}

/**
 * The time a client's answers to probes take on its link: the shortest of the last few. A long
 * round trip shows in every answer; a stall of the client (or of the server) only lengthens some,
 * and must not stretch the deadline for a dead client's visitors (the LIVENESS_PROBE_TIMEOUT_MS floor is what
 * absorbs stalls).
 */
export class AnswerTime {
  static readonly KEEP = 8;
  readonly #recent: number[] = [];

  /** One answer that came `ms` after its probe was sent. */
  sample(ms: number): void {
    this.#recent.push(Math.max(0, ms));
    if (this.#recent.length > AnswerTime.KEEP) this.#recent.shift();
  }

  /** The shortest recent answer time; undefined before the first answer. */
  get ms(): number | undefined {
    return this.#recent.length === 0 ? undefined : Math.min(...this.#recent);
  }
}

/** What the liveness watch asks of its broker and session. */
export interface LivenessHooks {
  /** How long a sign of life counts as fresh (no probe needed). */
  freshMs: number;
  /** Asks the client for a sign of life; resolves false when none came in time. */
  probe(): Promise<boolean>;
  /** The client's last sign of life (Date.now()) on any of its channels. */
  lastHeard(): number;
  /** True while some visitor waits for an answer from the client. */
  hasUnanswered(): boolean;
  /** A probe went unanswered: refuse the visitors that wait for the client. */
  unanswered(): void;
}

/** The probe loop of one session. */
export class ClientLiveness {
  readonly #h: LivenessHooks;
  #timer: NodeJS.Timeout | undefined;
  #probing = false;
  #stopped = false;
  /** Set when a probe went unanswered; cleared by the next sign of life. */
  #suspectSince: number | undefined;

  constructor(hooks: LivenessHooks) {
    this.#h = hooks;
  }

  /** Probes the client if visitors wait on it and it has been silent; call after each change. */
  watch(): void {
    if (this.#stopped || this.#probing || this.#timer) return;
    if (!this.#h.hasUnanswered()) return;
    const silentFor = Date.now() - this.#h.lastHeard();
    if (silentFor < this.#h.freshMs) {
      this.#timer = setTimeout(() => {
        this.#timer = undefined;
        this.watch();
      }, this.#h.freshMs - silentFor);
      this.#timer.unref();
      return;
    }
    this.#probing = true;
    const started = Date.now();
    void this.#h.probe().then((answered) => {
      this.#probing = false;
      if (this.#stopped) return;
      // A data channel that carried bytes from the client meanwhile is a sign of life too.
      if (answered || this.#h.lastHeard() > started) {
        this.#suspectSince = undefined;
        this.watch();
        return;
      }
      this.#suspectSince = started;
      this.#h.unanswered();
    });
  }

  /** True while the last probe went unanswered and nothing has been heard since. */
  suspect(): boolean {
    if (this.#suspectSince === undefined) return false;
    if (this.#h.lastHeard() > this.#suspectSince) {
      this.#suspectSince = undefined;
      return false;
    }
    return true;
  }

  /** Ends the watch (the session closed). */
  stop(): void {
    this.#stopped = true;
    if (this.#timer) clearTimeout(this.#timer);
    this.#timer = undefined;
  }
}
