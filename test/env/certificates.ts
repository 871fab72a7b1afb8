// A throw-away PKI for the test cluster, made with the openssl CLI (node:crypto can make keys but not
// X.509 certificates): one CA signs the apiserver's and kubelets' serving certificates, every client
// certificate (admin, controller-manager, scheduler, apiserver->kubelet, one per node) and node CSRs.
// EC P-256 keys: generating them takes milliseconds where RSA takes seconds on a busy 2-core machine.
import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';

export interface KeyPair {
  certPath: string;
  keyPath: string;
}

export interface CertificateAuthority extends KeyPair {
  dir: string;
  /** A certificate for clients authenticating as `commonName` in `organizations` (Kubernetes user and groups). */
  client(file: string, commonName: string, organizations?: string[]): KeyPair;
  /** A certificate serving TLS for the given IP addresses and DNS names. */
  server(file: string, commonName: string, ips: string[], dnsNames: string[]): KeyPair;
}

function openssl(args: string[]): void {
  execFileSync('openssl', args, { stdio: ['ignore', 'ignore', 'pipe'] });
}

function newKey(path: string): void {
  openssl(['genpkey', '-algorithm', 'EC', '-pkeyopt', 'ec_paramgen_curve:P-256', '-out', path]);
}

function subject(commonName: string, organizations: string[]): string {
  return [...organizations.map((o) => `/O=${o}`), `/CN=${commonName}`].join('');
}

export function createCertificateAuthority(dir: string): CertificateAuthority {
  const ca: KeyPair = { certPath: join(dir, 'ca.crt'), keyPath: join(dir, 'ca.key') };
  // A config of our own: the system openssl.cnf differs between distributions and may add extensions.
  const config = join(dir, 'openssl.cnf');
  writeFileSync(
    config,
    [
      '[req]',
      'distinguished_name = dn',
      '[dn]',
      '[ca]',
      'basicConstraints = critical,CA:TRUE',
      'keyUsage = critical,keyCertSign,cRLSign,digitalSignature',
      'subjectKeyIdentifier = hash',
      '',
    ].join('\n'),
  );
  newKey(ca.keyPath);
  openssl(['req', '-x509', '-new', '-config', config, '-extensions', 'ca', '-key', ca.keyPath, '-subj', '/CN=captionrun-test-ca',
    '-days', '30', '-out', ca.certPath]);

  const sign = (file: string, subj: string, extensions: string[]): KeyPair => {
    const pair: KeyPair = { certPath: join(dir, `${file}.crt`), keyPath: join(dir, `${file}.key`) };
    const csr = join(dir, `${file}.csr`);
    const ext = join(dir, `${file}.ext`);
    newKey(pair.keyPath);
    openssl(['req', '-new', '-config', config, '-key', pair.keyPath, '-subj', subj, '-out', csr]);
    writeFileSync(ext, [
      'basicConstraints = critical,CA:FALSE',
      'keyUsage = critical,digitalSignature,keyEncipherment',
      'authorityKeyIdentifier = keyid',
      ...extensions,
      '',
    ].join('\n'));
    openssl(['x509', '-req', '-in', csr, '-CA', ca.certPath, '-CAkey', ca.keyPath, '-set_serial', `0x${randomBytes(12).toString('hex')}`,
      '-days', '30', '-extfile', ext, '-out', pair.certPath]);
    return pair;
  };

  return {
    ...ca,
    dir,
    client: (file, commonName, organizations = []) =>
      sign(file, subject(commonName, organizations), ['extendedKeyUsage = clientAuth']),
    server: (file, commonName, ips, dnsNames) =>
      sign(file, subject(commonName, []), [
        'extendedKeyUsage = serverAuth',
        `subjectAltName = ${[...ips.map((ip) => `IP:${ip}`), ...dnsNames.map((d) => `DNS:${d}`)].join(',')}`,
      ]),
  };
}
