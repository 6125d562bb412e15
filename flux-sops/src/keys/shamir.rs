//! Shamir secret sharing over GF(2^8) (AES polynomial), as sops uses for key groups:
//! each share is the y bytes followed by one x byte.

use rand::RngCore;
use zeroize::Zeroizing;

fn mul(mut a: u8, mut b: u8) -> u8 {
    let mut product = 0u8;
    while b != 0 {
        if b & 1 != 0 {
            product ^= a;
        }
        let carry = a & 0x80 != 0;
        a <<= 1;
        if carry {
            a ^= 0x1B;
        }
        b >>= 1;
    }
    product
}

fn inverse(a: u8) -> u8 {
    // a^254 = a^-1 in GF(2^8).
    let mut result = 1u8;
    let mut base = a;
    let mut exp = 254u32;
    while exp > 0 {
        if exp & 1 == 1 {
            result = mul(result, base);
        }
        base = mul(base, base);
        exp >>= 1;
    }
    result
}

/// Combines shares (each `y bytes ‖ x`) into the secret. Returns `None` when the shares
/// are malformed (different lengths, duplicate or zero x).
pub fn combine(shares: &[Zeroizing<Vec<u8>>]) -> Option<Zeroizing<Vec<u8>>> {
    let first = shares.first()?;
    let len = first.len().checked_sub(1)?;
    if len == 0 || shares.iter().any(|s| s.len() != len + 1) {
        return None;
    }
    let xs: Vec<u8> = shares.iter().map(|s| s[len]).collect();
    for (i, x) in xs.iter().enumerate() {
        if *x == 0 || xs[..i].contains(x) {
            return None;
        }
    }
    let mut secret = Zeroizing::new(vec![0u8; len]);
    for (i, share) in shares.iter().enumerate() {
        // Lagrange basis at 0: prod_{j != i} x_j / (x_i ^ x_j)
        let mut basis = 1u8;
        for (j, xj) in xs.iter().enumerate() {
            if i != j {
                basis = mul(basis, mul(*xj, inverse(xs[i] ^ xj)));
            }
        }
        for (byte, y) in secret.iter_mut().zip(share.iter()) {
            *byte ^= mul(*y, basis);
        }
    }
    Some(secret)
}

/// Splits `secret` into `parts` shares, any `threshold` of which recover it.
pub fn split(secret: &[u8], parts: usize, threshold: usize) -> Vec<Zeroizing<Vec<u8>>> {
    let threshold = threshold.clamp(1, parts.max(1));
    let mut coefficients = Zeroizing::new(vec![0u8; secret.len() * (threshold - 1)]);
    rand::rngs::OsRng.fill_bytes(&mut coefficients);
    (1..=parts)
        .map(|x| {
            let x = x as u8;
            let mut share = Zeroizing::new(Vec::with_capacity(secret.len() + 1));
            for (i, s) in secret.iter().enumerate() {
                // Horner evaluation of s + c1 x + c2 x^2 + ...
                let coeffs = &coefficients[i * (threshold - 1)..(i + 1) * (threshold - 1)];
                let mut y = 0u8;
                for c in coeffs.iter().rev() {
                    y = mul(y, x) ^ c;
                }
                y = mul(y, x) ^ s;
                share.push(y);
            }
            share.push(x);
            share
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn any_threshold_subset_recovers() {
        let secret = b"0123456789abcdef0123456789abcdef";
        let shares = split(secret, 3, 2);
        for pair in [[0, 1], [1, 2], [0, 2]] {
            let subset: Vec<_> = pair.iter().map(|&i| shares[i].clone()).collect();
            assert_eq!(combine(&subset).unwrap().as_slice(), secret);
        }
        assert_ne!(combine(&shares[..1]).unwrap().as_slice(), secret);
    }
}
