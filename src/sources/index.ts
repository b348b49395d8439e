export { gitSource } from "./git-source.js";
export type { GitSourceOptions, GitSourceResult, GitSourceComponents } from "./git-source.js";
export { parseGitRemote, redactUrl } from "./git-url.js";
export type { GitRemote } from "./git-url.js";
export { GitUrlError, GitNotInstalledError, GitFetchError, GitRefNotFoundError, GitOfflineError, GitCommandError, GitRefError, GitCheckoutError } from "./git-errors.js";
export { explainGitSource, asGitSourceComponents } from "./git-explain.js";
export type { GitSourceExplanation, GitSourceChange } from "./git-explain.js";
