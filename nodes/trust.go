package nodes

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/hex"
	"encoding/pem"
	"errors"
	"fmt"
	"math/big"
	"os"
	"path/filepath"
	"strings"
	"time"
)

// Trust between a lab and its agents.
//
// The lab makes a certificate authority of its own (kept in its data
// directory, so a resumed lab has the same) and signs a certificate for
// itself and, when an agent joins it, one for the agent's key. An agent
// pins the lab's certificate the first time a lab with the right token
// enrols it, keeps it in its data directory, and from then on takes
// connections only from holders of certificates that lab signed: the lab,
// and the other agents of the lab. Every connection is TLS 1.3 with
// those certificates on both sides.
//
// The token proves itself on the control connection without crossing it:
// each side sends an HMAC, under a key derived from the token, of keying
// material exported from that very TLS session (RFC 5705), so a proof
// cannot be replayed on another connection nor relayed by someone in the
// middle. An agent not yet enrolled has only its self-signed certificate;
// the lab takes it on the strength of the agent's proof.

const (
	caCommonName  = "caplab lab authority"
	labCommonName = "caplab lab"
	agentCNPrefix = "caplab region "
	proofLabel    = "caplab control v1"
)

// fingerprint names a certificate: sha256 of its DER, in hex.
func fingerprint(der []byte) string {
	sum := sha256.Sum256(der)
	return "sha256:" + hex.EncodeToString(sum[:])
}

// shortPrint is a fingerprint short enough for a sentence.
func shortPrint(fp string) string {
	if len(fp) > 23 {
		return fp[:23] + "…"
	}
	return fp
}

// tokenKey derives the control connection's proof key from the token.
func tokenKey(token string) []byte {
	m := hmac.New(sha256.New, []byte(token))
	m.Write([]byte("caplab control key v1"))
	return m.Sum(nil)
}

// proof is role's HMAC of the session's exported keying material.
func proof(key []byte, role string, cs tls.ConnectionState) ([]byte, error) {
	ekm, err := cs.ExportKeyingMaterial(proofLabel, nil, 32)
	if err != nil {
		return nil, err
	}
	m := hmac.New(sha256.New, key)
	m.Write([]byte(role))
	m.Write(ekm)
	return m.Sum(nil), nil
}

// checkProof verifies role's proof of the token on this session.
func checkProof(key []byte, role string, cs tls.ConnectionState, got []byte) bool {
	want, err := proof(key, role, cs)
	return err == nil && hmac.Equal(want, got)
}

func newKey() (*ecdsa.PrivateKey, error) { return ecdsa.GenerateKey(elliptic.P256(), rand.Reader) }

func serial() *big.Int {
	n, _ := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 127))
	return n
}

// signCert makes a certificate for pub named cn, signed by parent's key
// (self-signed when parent is nil), valid ten years.
func signCert(cn string, pub crypto.PublicKey, isCA bool, parent *x509.Certificate, signer crypto.Signer) ([]byte, error) {
	tmpl := &x509.Certificate{
		SerialNumber: serial(),
		Subject:      pkix.Name{CommonName: cn},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().AddDate(10, 0, 0),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth},
	}
	if isCA {
		tmpl.IsCA, tmpl.BasicConstraintsValid = true, true
		tmpl.KeyUsage |= x509.KeyUsageCertSign
		tmpl.ExtKeyUsage = nil
	}
	if parent == nil {
		parent = tmpl
	}
	return x509.CreateCertificate(rand.Reader, tmpl, parent, pub, signer)
}

// labIdentity is a lab's authority and its own certificate.
type labIdentity struct {
	id     string // the lab's id: what its agents' data belongs to
	ca     *x509.Certificate
	caKey  *ecdsa.PrivateKey
	pool   *x509.CertPool
	client tls.Certificate // the lab's own, signed by ca
}

// loadLabIdentity reads the lab's authority from dir/trust, making one
// the first time; the lab's own certificate is new every start.
func loadLabIdentity(dir string) (*labIdentity, error) {
	tdir := filepath.Join(dir, "trust")
	li := &labIdentity{}
	caPEM, err1 := os.ReadFile(filepath.Join(tdir, "lab-ca.pem"))
	keyPEM, err2 := os.ReadFile(filepath.Join(tdir, "lab-ca-key.pem"))
	idRaw, err3 := os.ReadFile(filepath.Join(tdir, "lab-id"))
	switch {
	case err1 == nil && err2 == nil && err3 == nil:
		if li.ca, err1 = parseCertPEM(caPEM); err1 != nil {
			return nil, fmt.Errorf("nodes: %s: %w", tdir, err1)
		}
		if li.caKey, err2 = parseKeyPEM(keyPEM); err2 != nil {
			return nil, fmt.Errorf("nodes: %s: %w", tdir, err2)
		}
		li.id = strings.TrimSpace(string(idRaw))
	case errors.Is(err1, os.ErrNotExist) && errors.Is(err2, os.ErrNotExist):
		var err error
		if li.caKey, err = newKey(); err != nil {
			return nil, err
		}
		der, err := signCert(caCommonName, &li.caKey.PublicKey, true, nil, li.caKey)
		if err != nil {
			return nil, err
		}
		li.ca, _ = x509.ParseCertificate(der)
		li.id = randomID()
		keyDER, _ := x509.MarshalECPrivateKey(li.caKey)
		if err := os.MkdirAll(tdir, 0o700); err != nil {
			return nil, err
		}
		for name, data := range map[string][]byte{
			"lab-ca.pem":     pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}),
			"lab-ca-key.pem": pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: keyDER}),
			"lab-id":         []byte(li.id + "\n"),
		} {
			if err := writeFileAtomic(filepath.Join(tdir, name), data, true); err != nil {
				return nil, fmt.Errorf("nodes: lab certificate: %w", err)
			}
		}
	default:
		return nil, fmt.Errorf("nodes: %s is incomplete (the lab's certificate, key and id belong together): move the directory away or start with another --data-dir", tdir)
	}
	li.pool = x509.NewCertPool()
	li.pool.AddCert(li.ca)
	key, err := newKey()
	if err != nil {
		return nil, err
	}
	der, err := signCert(labCommonName, &key.PublicKey, false, li.ca, li.caKey)
	if err != nil {
		return nil, err
	}
	li.client = tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key}
	return li, nil
}

func randomID() string {
	b := make([]byte, 8)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// fingerprint is the lab certificate's.
func (li *labIdentity) fingerprint() string { return fingerprint(li.ca.Raw) }

// issue signs a certificate for an agent's public key (PKIX DER).
func (li *labIdentity) issue(region string, pkix []byte) ([]byte, error) {
	pub, err := x509.ParsePKIXPublicKey(pkix)
	if err != nil {
		return nil, fmt.Errorf("the agent's key: %w", err)
	}
	return signCert(agentCNPrefix+region, pub, false, li.ca, li.caKey)
}

// clientConfig is the lab's TLS for dialling an agent. The agent's
// certificate is checked after the handshake: by its proof of the token
// on a control connection (an agent not yet enrolled has only its own
// certificate), by the lab's signature and its region on every other.
func (li *labIdentity) clientConfig() *tls.Config {
	return &tls.Config{
		MinVersion:         tls.VersionTLS13,
		Certificates:       []tls.Certificate{li.client},
		InsecureSkipVerify: true, // checked by verifyAgent or the token's proof, see above
		ClientSessionCache: tls.NewLRUClientSessionCache(64),
	}
}

// verifyPeer checks a certificate chain presented on a connection: signed
// by the lab's authority; it returns the name it carries.
func verifyPeer(pool *x509.CertPool, chain []*x509.Certificate) (string, error) {
	if len(chain) == 0 {
		return "", errors.New("no certificate")
	}
	if _, err := chain[0].Verify(x509.VerifyOptions{Roots: pool, KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageAny}}); err != nil {
		return "", fmt.Errorf("certificate %s (%q) is not signed by this lab", shortPrint(fingerprint(chain[0].Raw)), chain[0].Subject.CommonName)
	}
	return chain[0].Subject.CommonName, nil
}

// verifyAgent checks that a connection's other end is region's agent.
func verifyAgent(pool *x509.CertPool, cs tls.ConnectionState, region string) error {
	cn, err := verifyPeer(pool, cs.PeerCertificates)
	if err != nil {
		return err
	}
	if cn != agentCNPrefix+region {
		return fmt.Errorf("the certificate there is %q, not region %s's", cn, region)
	}
	return nil
}

func parseCertPEM(raw []byte) (*x509.Certificate, error) {
	b, _ := pem.Decode(raw)
	if b == nil || b.Type != "CERTIFICATE" {
		return nil, errors.New("no certificate in PEM")
	}
	return x509.ParseCertificate(b.Bytes)
}

func parseKeyPEM(raw []byte) (*ecdsa.PrivateKey, error) {
	b, _ := pem.Decode(raw)
	if b == nil || b.Type != "EC PRIVATE KEY" {
		return nil, errors.New("no EC private key in PEM")
	}
	return x509.ParseECPrivateKey(b.Bytes)
}
