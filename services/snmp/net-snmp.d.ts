/** The agent library ships no type declarations; it is used through services/snmp only. */
declare module 'net-snmp' {
  const snmp: any;
  export default snmp;
}

/** The v2c client the tests and benchmarks use (no type declarations either). */
declare module 'snmp-native' {
  const snmpNative: any;
  export default snmpNative;
}
