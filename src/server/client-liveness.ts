/**
 * Whether a session's client is still there, as the ChannelBroker needs to know before it holds a
 * visitor: while visitors wait for a channel (or were assigned one and heard nothing back) and the
 * client has been silent for a moment, probe it on the control channel; an unanswered probe makes the
 * client suspect until its next sign of life, and the broker refuses visitors at once meanwhile.
 */

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
    void this.#h.probe().then((alive) => {
      this.#probing = false;
      if (this.#stopped) return;
      if (alive) {
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
