// JsSIP ships no browser build on npm: this is bundled by esbuild into
// page/jssip.bundle.js (see package.json "bundle"), exposing window.JsSIP.
import JsSIP from 'jssip';
window.JsSIP = JsSIP;
