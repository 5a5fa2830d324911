/**
 * Just enough BER to read the header of an SNMP message before the agent library sees it: the version, the
 * community (v1/v2c), the USM security parameters (v3) and the PDU tag. Anything that is not one well-formed
 * message filling the whole datagram is rejected, so random and truncated packets never reach the agent.
 */

export interface Tlv {
  tag: number;
  /** Offset of the first content byte. */
  start: number;
  /** Offset just after the last content byte. */
  end: number;
}

/** One TLV at `off`, bounded by `limit`; undefined when it does not fit. */
export function readTlv(buf: Buffer, off: number, limit = buf.length): Tlv | undefined {
  if (off + 2 > limit) return undefined;
  const tag = buf[off];
  // Multi-byte tags do not occur in SNMP.
  if ((tag & 0x1f) === 0x1f) return undefined;
  let len = buf[off + 1];
  let start = off + 2;
  if (len & 0x80) {
    const n = len & 0x7f;
    if (n === 0 || n > 4 || start + n > limit) return undefined;
    len = 0;
    for (let i = 0; i < n; i++) len = len * 256 + buf[start + i];
    start += n;
  }
  const end = start + len;
  if (end > limit) return undefined;
  return { tag, start, end };
}

function readInt(buf: Buffer, t: Tlv | undefined): number | undefined {
  if (!t || t.tag !== 0x02) return undefined;
  const n = t.end - t.start;
  if (n < 1 || n > 5) return undefined;
  let v = buf[t.start] & 0x80 ? -1 : 0;
  for (let i = t.start; i < t.end; i++) v = v * 256 + buf[i];
  return v;
}

export const PDU = {
  get: 0xa0,
  getNext: 0xa1,
  response: 0xa2,
  set: 0xa3,
  trapV1: 0xa4,
  getBulk: 0xa5,
  inform: 0xa6,
  trapV2: 0xa7,
  report: 0xa8,
} as const;

export type SnmpHeader =
  | { version: 0 | 1; community: Buffer; pdu: number }
  | {
      version: 3;
      flags: number;
      securityModel: number;
      engineId: Buffer;
      engineBoots: number;
      engineTime: number;
      user: string;
      /** PDU tag when the scoped PDU is in clear (undefined when encrypted). */
      pdu?: number;
    };

/** The header of one SNMP message, or undefined when the datagram is not exactly one well-formed message. */
export function parseHeader(buf: Buffer): SnmpHeader | undefined {
  const msg = readTlv(buf, 0);
  if (!msg || msg.tag !== 0x30 || msg.end !== buf.length) return undefined;
  const verTlv = readTlv(buf, msg.start, msg.end);
  const version = readInt(buf, verTlv);
  if (!verTlv || version === undefined) return undefined;
  if (version === 0 || version === 1) {
    const comm = readTlv(buf, verTlv.end, msg.end);
    if (!comm || comm.tag !== 0x04) return undefined;
    const pdu = readTlv(buf, comm.end, msg.end);
    if (!pdu || pdu.end !== msg.end || pdu.tag < 0xa0 || pdu.tag > 0xa8) return undefined;
    return { version, community: buf.subarray(comm.start, comm.end), pdu: pdu.tag };
  }
  if (version !== 3) return undefined;
  const global = readTlv(buf, verTlv.end, msg.end);
  if (!global || global.tag !== 0x30) return undefined;
  const msgId = readTlv(buf, global.start, global.end);
  const maxSize = readTlv(buf, msgId?.end ?? global.end, global.end);
  const flagsTlv = readTlv(buf, maxSize?.end ?? global.end, global.end);
  const model = readTlv(buf, flagsTlv?.end ?? global.end, global.end);
  if (readInt(buf, msgId) === undefined || readInt(buf, maxSize) === undefined) return undefined;
  if (!flagsTlv || flagsTlv.tag !== 0x04 || flagsTlv.end - flagsTlv.start !== 1) return undefined;
  const securityModel = readInt(buf, model);
  if (securityModel === undefined || model!.end !== global.end) return undefined;
  const sec = readTlv(buf, global.end, msg.end);
  if (!sec || sec.tag !== 0x04) return undefined;
  const usm = readTlv(buf, sec.start, sec.end);
  if (!usm || usm.tag !== 0x30 || usm.end !== sec.end) return undefined;
  const engine = readTlv(buf, usm.start, usm.end);
  const bootsTlv = readTlv(buf, engine?.end ?? usm.end, usm.end);
  const timeTlv = readTlv(buf, bootsTlv?.end ?? usm.end, usm.end);
  const userTlv = readTlv(buf, timeTlv?.end ?? usm.end, usm.end);
  const authTlv = readTlv(buf, userTlv?.end ?? usm.end, usm.end);
  const privTlv = readTlv(buf, authTlv?.end ?? usm.end, usm.end);
  const engineBoots = readInt(buf, bootsTlv);
  const engineTime = readInt(buf, timeTlv);
  if (!engine || engine.tag !== 0x04 || engineBoots === undefined || engineTime === undefined) return undefined;
  if (!userTlv || userTlv.tag !== 0x04 || !authTlv || authTlv.tag !== 0x04 || !privTlv || privTlv.tag !== 0x04 || privTlv.end !== usm.end) return undefined;
  const scoped = readTlv(buf, sec.end, msg.end);
  if (!scoped || scoped.end !== msg.end) return undefined;
  let pdu: number | undefined;
  if (scoped.tag === 0x30) {
    const ctxEngine = readTlv(buf, scoped.start, scoped.end);
    const ctxName = readTlv(buf, ctxEngine?.end ?? scoped.end, scoped.end);
    const p = readTlv(buf, ctxName?.end ?? scoped.end, scoped.end);
    if (!ctxEngine || ctxEngine.tag !== 0x04 || !ctxName || ctxName.tag !== 0x04 || !p || p.end !== scoped.end) return undefined;
    pdu = p.tag;
  } else if (scoped.tag !== 0x04) return undefined;
  return {
    version: 3,
    flags: buf[flagsTlv.start],
    securityModel,
    engineId: buf.subarray(engine.start, engine.end),
    engineBoots,
    engineTime,
    user: buf.toString('utf8', userTlv.start, userTlv.end),
    pdu,
  };
}
