// Who the page is talking as: GET /v1/auth/whoami tells the role of the session's key and whether the API
// needs one at all. The key is asked for once, kept in sessionStorage, and asked for again after a 401.
import { createContext } from 'preact';
import { useContext } from 'preact/hooks';
import type { Role } from './api';

export interface Session {
  role: Role;
  authRequired: boolean;
  /** Forget the key and ask for another. */
  signOut(): void;
}

export const SessionContext = createContext<Session>({ role: 'read', authRequired: true, signOut: () => undefined });

export const useSession = () => useContext(SessionContext);

/** What a role may do (docs/http-api.md, Authentication and roles): admin actions are offered to admin keys only. */
export const canAdminister = (role: Role) => role === 'admin';
