import type { Store, SessionData } from 'express-session'

export declare const SESSION_TYPE: 'session01'
export declare const MAX_LIFETIME_S: number
/** The Redis Cluster hash slot of a key (hash tags honoured), as CLUSTER KEYSLOT computes it. */
export declare function slotOf(key: string | Buffer): number
/** How many items trending() asks each primary of a cluster for: max(2n, n + 10), at most 1000. */
export declare function trendingPerNodeCount(count: number): number
/** Each primary's TRENDING ... WITHSCORES reply (flat arrays) merged: scores summed per id, by sum then id. */
export declare function mergeTrending(replies: any[][], count: number): ScoredItem[]
/** The primaries' STATS (as [node name, Stats] pairs) merged, as stats() does in a cluster. */
export declare function mergeStats(perNode: [string, Stats][]): Stats

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
  /** SESSION.TRENDING; in a cluster every primary, merged (see README "Redis Cluster") */
  trending(catalog: string, opts?: TrendingOptions & { withScores?: false }): Promise<string[]>
  trending(catalog: string, opts: TrendingOptions & { withScores: true }): Promise<ScoredItem[]>
  /** SESSION.STATS; in a cluster every primary, merged, each one's own reply in `nodes` */
  stats(opts?: { at?: number }): Promise<Stats>
  /** SESSION.GROUP LIST (sorted); in a cluster sent to one primary */
  catalogAdd(catalog: string, item: string, opts?: { score?: number; categories?: string[]; ttl?: number; expireat?: number }): Promise<boolean>
  catalogDel(catalog: string, ...items: string[]): Promise<number>
  notifyGroup(group: string, id: string, payload: string | Buffer, opts?: { ttl?: number; expireat?: number; maxlen?: number; at?: number; joinedBefore?: number | 'now'; joinedAfter?: number }): Promise<boolean>
  groupList(): Promise<string[]>
  /** SESSION.GROUP INFO; rejects with `no such group` */
  groupInfo(group: string): Promise<GroupInfo>
  /** SESSION.GROUP DROP: true when the group existed */
  groupDrop(group: string): Promise<boolean>
}

export interface ScoredItem { item: string; score: number }
export interface TrendingOptions {
  /** default 10, at most 1000 */
  count?: number
  category?: string
  withScores?: boolean
  /** unix ms to decay the scores to (a cluster helper sends one AT, default now, to every primary) */
  at?: number
}
/** SESSION.STATS. Merged in a cluster: events, active, views_per_minute summed; trending_tracked the fullest primary's; sizing the first primary's. */
export interface Stats {
  events: number
  /** distinct sessions with an event in the last `active_window_minutes` (a sketch, about 1.6% error per primary) */
  active: number
  active_window_minutes: number
  /** 60 numbers, the oldest minute first, the current minute last */
  views_per_minute: number[]
  trending_tracked: number
  trend_top_k: number
  trend_half_life: number
  /** each primary's own reply by `host:port` (empty without a cluster) */
  nodes: { [node: string]: Stats }
}
export interface GroupInfo { notifications: number; memory: number; first_seq: number; last_seq: number }

export interface PageView { new: number; events: number; unique: number; seen_before: number; idle_ms: number; ttl_ms: number; pending: number }
export interface Notification {
  group: string; id: string; payload: string; published_ms: number
  /** present when the server sends it (inbox({ unread: true })): delivered already, not yet acknowledged */
  delivered?: boolean
}
export interface SurfaceOptions { count?: number; category?: string; explore?: number; maxImpressions?: number; boostTrending?: number; nomark?: boolean; withScores?: boolean }
export interface InboxOptions {
  count?: number
  /** list without marking delivered (not with unread) */
  peek?: boolean
  /** every live notification not yet acknowledged, delivered or not, each with `delivered` */
  unread?: boolean
  at?: number
}
export type AckOptions = { upto: string; ids?: undefined; at?: number } | { ids: string[]; upto?: undefined; at?: number }

export declare class Intelligence {
  /** the SessionStore (its trending(), stats() and group helpers) */
  readonly store: SessionStore
  readonly key: string
  /** this request's TOUCH reply, or null when no session was loaded */
  readonly view: PageView | null
  surface(catalog: string, opts?: SurfaceOptions & { withScores?: false }): Promise<string[]>
  surface(catalog: string, opts: SurfaceOptions & { withScores: true }): Promise<{ item: string; score: number }[]>
  seen(items: string | string[]): Promise<boolean[]>
  /** SURFACE_RO: as surface(), recording nothing (in a cluster a replica only with replica reads configured) */
  surfaceRo(catalog: string, opts?: SurfaceOptions & { withScores?: false }): Promise<string[]>
  surfaceRo(catalog: string, opts: SurfaceOptions & { withScores: true }): Promise<ScoredItem[]>
  inbox(opts?: InboxOptions): Promise<Notification[]>
  /** SESSION.ACK: marks delivered notifications of `group` read; how many were newly marked */
  ack(group: string, opts: AckOptions): Promise<number>
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
