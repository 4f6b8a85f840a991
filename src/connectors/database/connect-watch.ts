import type { Socket } from 'node:net';
import { Deadline } from '../kit/deadline';

/** connect: reaching the server until it first answers; authenticate: TLS and login after that. */
export type OpenPhase = 'connect' | 'authenticate';

/** Opening a session failed; `phase` tells the test which step it was. */
export class SessionOpenError extends Error {
  readonly code: unknown;
  constructor(
    readonly phase: OpenPhase,
    override readonly cause: unknown,
    /** How long the server took to first answer (when it did). */
    readonly connectMs?: number,
  ) {
    super((cause as Error)?.message ?? String(cause));
    this.name = 'SessionOpenError';
    this.code = (cause as { code?: unknown })?.code;
  }
}

/**
 * Watches the driver's own socket while it opens a session, so one connection tells apart "the
 * server does not answer" (a black hole accepts TCP and then says nothing) from "the server answered
 * but TLS or the login failed or hung". Each phase has its own `timeoutMs`; running out destroys the
 * socket, so a hung driver cannot hold the test past its bound.
 */
export class ConnectWatch {
  private readonly startedAt = performance.now();
  private answeredAt: number | undefined;
  private readyAt: number | undefined;
  private socket: Socket | undefined;
  private readonly deadline: Deadline;
  private expiredPhase: OpenPhase | undefined;

  constructor(timeoutMs: number, signal: AbortSignal) {
    this.deadline = new Deadline(
      timeoutMs,
      'connect',
      () => {
        this.expiredPhase = this.phase;
        this.socket?.destroy();
      },
      { signal, peer: 'the database' },
    );
    this.deadline.arm();
  }

  get phase(): OpenPhase {
    return this.answeredAt === undefined ? 'connect' : 'authenticate';
  }

  /** The socket of the current attempt (to cut it on a later read timeout). */
  get currentSocket(): Socket | undefined {
    return this.socket;
  }

  /** Hands the driver a socket that reports the server's first bytes (a later attempt keeps the first time). */
  attach(socket: Socket): Socket {
    this.socket = socket;
    socket.once('data', () => {
      if (this.answeredAt !== undefined) return;
      this.answeredAt = performance.now();
      this.deadline.arm(); // a fresh bound for TLS + login
    });
    return socket;
  }

  /**
   * Runs one driver connect under the watch. A connection that completes after the watch gave up
   * is closed with `discard`, never leaked.
   */
  async run<T>(connect: () => Promise<T>, discard: (value: T) => void): Promise<T> {
    const attempt = connect();
    let lost = false;
    attempt.then(
      (value) => {
        if (lost) discard(value);
      },
      () => undefined,
    );
    try {
      return await this.deadline.race(attempt);
    } catch (err) {
      lost = true;
      const phase = this.expiredPhase ?? this.phase;
      const answered =
        this.answeredAt === undefined ? undefined : Math.round(this.answeredAt - this.startedAt);
      throw new SessionOpenError(phase, err, answered);
    }
  }

  /** Stops the clock; the time each phase took. */
  finish(): { connectMs: number; authenticateMs: number } {
    this.deadline.dispose();
    this.readyAt = performance.now();
    const answered = this.answeredAt ?? this.readyAt;
    return {
      connectMs: Math.round(answered - this.startedAt),
      authenticateMs: Math.round(this.readyAt - answered),
    };
  }

  /** Gives up (a later step failed before finish): stops the clock. */
  dispose(): void {
    this.deadline.dispose();
  }
}
