// ESM entry: the same objects as the CommonJS build.
import cjs from './index.js'

export const { SessionStore, intelligence, withPageView, fastifyIntelligence, Intelligence, SESSION_TYPE, MAX_LIFETIME_S, slotOf, mergeTrending, mergeStats, trendingPerNodeCount } = cjs
export default cjs.SessionStore
