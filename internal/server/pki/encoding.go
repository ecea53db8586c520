package pki

import (
	"crypto"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"encoding/hex"
	"encoding/pem"
	"errors"
	"fmt"
	"math/big"
)

const (
	pemCert = "CERTIFICATE"
	pemKey  = "PRIVATE KEY"
	pemCSR  = "CERTIFICATE REQUEST"
)

func encodeCert(der []byte) []byte {
	return pem.EncodeToMemory(&pem.Block{Type: pemCert, Bytes: der})
}

func encodeKey(key crypto.PrivateKey) ([]byte, error) {
	der, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return nil, fmt.Errorf("pki: encode key: %w", err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: pemKey, Bytes: der}), nil
}

// decodeBlock returns the DER bytes of the first PEM block of type typ.
func decodeBlock(data []byte, typ string) ([]byte, error) {
	rest := data
	for {
		var b *pem.Block
		b, rest = pem.Decode(rest)
		if b == nil {
			return nil, fmt.Errorf("no PEM %q block found (corrupt or not a PEM file)", typ)
		}
		if b.Type == typ {
			return b.Bytes, nil
		}
	}
}

func decodeCert(data []byte) ([]byte, error) {
	der, err := decodeBlock(data, pemCert)
	if err != nil {
		return nil, err
	}
	if _, err := x509.ParseCertificate(der); err != nil {
		return nil, fmt.Errorf("corrupt certificate: %w", err)
	}
	return der, nil
}

func decodeKey(data []byte) (crypto.PrivateKey, error) {
	der, err := decodeBlock(data, pemKey)
	if err != nil {
		return nil, err
	}
	key, err := x509.ParsePKCS8PrivateKey(der)
	if err != nil {
		return nil, fmt.Errorf("corrupt private key: %w", err)
	}
	return key, nil
}

// ParseCertificatePEM parses the first certificate in data.
func ParseCertificatePEM(data []byte) (*x509.Certificate, error) {
	der, err := decodeCert(data)
	if err != nil {
		return nil, fmt.Errorf("pki: %w", err)
	}
	return x509.ParseCertificate(der)
}

// Fingerprint is "sha256:" followed by the hex SHA-256 of the certificate's DER.
func Fingerprint(cert *x509.Certificate) string {
	sum := sha256.Sum256(cert.Raw)
	return "sha256:" + hex.EncodeToString(sum[:])
}

func newSerial() (*big.Int, error) {
	n, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 127))
	if err != nil {
		return nil, fmt.Errorf("pki: serial number: %w", err)
	}
	if n.Sign() == 0 {
		return nil, errors.New("pki: zero serial number")
	}
	return n, nil
}
