import type { Store, SessionData } from 'express-session'

export declare const SESSION_TYPE: 'session01'
export declare const MAX_LIFETIME_S: number
/** The Redis Cluster hash slot of a key (hash tags honoured), as CLUSTER KEYSLOT computes it. */
export declare function slotOf(key: string | Buffer): number

export interface Serializer {
  parse(value: any): any
  stringify(value: any): string | Buffer
  /** parse receives a Buffer instead of a string */
  binary?: boolean
}

export interface SessionStoreOptions {
  /** node-redis 4/5/6 client or cluster, or ioredis Redis/Cluster */
  client: any
  prefix?: string
  /** seconds, or (sess) => seconds; the cookie's expiry wins over a number */
  ttl?: number | ((sess: any) => number)
  /** maximum age from creation (MAXAGE), seconds or (sess) => seconds */
  absoluteTtl?: number | ((sess: any) => number)
  disableTouch?: boolean
  /** refused: native sessions always expire */
  disableTTL?: false
  serializer?: Serializer
  scanCount?: number
  /** the principal a session belongs to (for sessions() / revokeAll()) */
  user?: (sess: any) => string | number | null | undefined
  /** field holding the serialized session (default 'sess') */
  field?: string
  /** upgrade connect-redis string sessions on first access (default true) */
  upgradeLegacy?: boolean
}

type Cb<T> = (err: any, data?: T) => void

export declare class SessionStore extends Store {
  constructor(options: SessionStoreOptions)
  prefix: string
  key(sid: string): string
  user(sess: any): string | null
  getTTL(sess: any): number
  getTTLms(sess: any): number
  get(sid: string, cb?: Cb<SessionData | null>): Promise<SessionData | null>
  set(sid: string, sess: SessionData, cb?: Cb<void>): Promise<void>
  touch(sid: string, sess: SessionData, cb?: Cb<void>): Promise<void>
  destroy(sid: string, cb?: Cb<void>): Promise<void>
  clear(cb?: Cb<void>): Promise<void>
  length(cb?: Cb<number>): Promise<number>
  ids(cb?: Cb<string[]>): Promise<string[]>
  all(cb?: Cb<SessionData[]>): Promise<SessionData[]>
  regenerate(req: any, fn: (err?: any) => void): void
}

export interface PageView { new: number; events: number; unique: number; seen_before: number; idle_ms: number; ttl_ms: number; pending: number }
export interface Notification { group: string; id: string; payload: string; published_ms: number }
export interface SurfaceOptions { count?: number; category?: string; explore?: number; maxImpressions?: number; nomark?: boolean; withScores?: boolean }

export declare class Intelligence {
  readonly key: string
  /** this request's TOUCH reply, or null when no session was loaded */
  readonly view: PageView | null
  surface(catalog: string, opts?: SurfaceOptions & { withScores?: false }): Promise<string[]>
  surface(catalog: string, opts: SurfaceOptions & { withScores: true }): Promise<{ item: string; score: number }[]>
  seen(items: string | string[]): Promise<boolean[]>
  inbox(opts?: { count?: number; peek?: boolean }): Promise<Notification[]>
  enrich(opts?: { attrs?: object | string; join?: string[]; leave?: string[] }): Promise<any | null>
  /** the user's session ids (every primary of a cluster, merged, sorted) */
  sessions(user?: string): Promise<string[]>
  /** log out everywhere: deletes the user's sessions (on every primary); the count */
  revokeAll(user?: string): Promise<number>
}

export type PageEvent = string | { item: string; categories?: string[] } | null | undefined | false

export interface IntelligenceOptions { store: SessionStore; event?: (req: any) => PageEvent }

export declare function intelligence(options: IntelligenceOptions): (req: any, res: any, next: (err?: any) => void) => void
export declare function fastifyIntelligence(options: IntelligenceOptions): (request: any, reply: any, done: () => void) => void
export declare function withPageView<T>(store: SessionStore, req: any, event: PageEvent, fn: () => T): T

declare global {
  namespace Express { interface Request { intelligence: Intelligence } }
}

export default SessionStore
