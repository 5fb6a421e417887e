// Keep-alive agents for connections made through the SSRF guard, one pair (http, https) per allow
// list: a pooled socket was connected under the guard's decision for its host:port, so it may only
// be reused under the same decision. The image downloader and the webhook sender each keep one.
import http from 'node:http';
import https from 'node:https';

export class GuardedAgents {
  private readonly byAllowList = new Map<string, { http: http.Agent; https: https.Agent }>();

  /** The agents of one allow list (`allowKey`: the list, normalised and joined). */
  for(allowKey: string): { http: http.Agent; https: https.Agent } {
    let agents = this.byAllowList.get(allowKey);
    if (!agents) {
      const options = { keepAlive: true, keepAliveMsecs: 1000, maxFreeSockets: 64, scheduling: 'lifo' as const };
      agents = { http: new http.Agent(options), https: new https.Agent(options) };
      this.byAllowList.set(allowKey, agents);
    }
    return agents;
  }

  /** Closes every pooled keep-alive socket (tests and benches end cleanly). */
  close(): void {
    for (const { http: h, https: s } of this.byAllowList.values()) {
      h.destroy();
      s.destroy();
    }
    this.byAllowList.clear();
  }
}
