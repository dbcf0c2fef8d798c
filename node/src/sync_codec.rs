//! The byte framing of the request–response protocol `/slotmesh/sync/1`: each request and
//! each answer is one length-prefixed frame (`u32` big-endian length, then the
//! [`SyncRequest`]/[`SyncResponse`] encoding), a request bounded by [`MAX_REQUEST_BYTES`],
//! an answer by [`MAX_SYNC_BYTES`]. A frame is read as its bytes arrive: the length a peer
//! claims is a limit, not an allocation. Decoding and its limits are proto's; this file only
//! moves frames.

use futures::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use libp2p::request_response;
use libp2p::StreamProtocol;
use slotmesh_proto::Limits;
use slotmesh_proto::{SyncRequest, SyncResponse, MAX_REQUEST_BYTES, MAX_SYNC_BYTES};
use std::io;

/// The protocol name.
pub const SYNC_PROTOCOL: StreamProtocol = StreamProtocol::new("/slotmesh/sync/1");

/// Frames [`SyncRequest`]s and [`SyncResponse`]s.
#[derive(Debug, Clone, Default)]
pub struct SyncCodec {
    limits: Limits,
}

/// Bytes of a frame allocated ahead of their arrival.
const READ_AHEAD: usize = 64 << 10;

async fn read_frame<T: AsyncRead + Unpin + Send>(io: &mut T, limit: usize) -> io::Result<Vec<u8>> {
    let mut len = [0u8; 4];
    io.read_exact(&mut len).await?;
    let len = u32::from_be_bytes(len) as usize;
    if len > limit {
        return Err(io::Error::new(
            io::ErrorKind::InvalidData,
            format!("frame of {len} bytes exceeds {limit}"),
        ));
    }
    let mut frame = Vec::with_capacity(len.min(READ_AHEAD));
    io.take(len as u64).read_to_end(&mut frame).await?;
    if frame.len() < len {
        return Err(io::Error::new(
            io::ErrorKind::UnexpectedEof,
            format!("frame ended after {} of {len} bytes", frame.len()),
        ));
    }
    Ok(frame)
}

async fn write_frame<T: AsyncWrite + Unpin + Send>(
    io: &mut T,
    frame: &[u8],
    limit: usize,
) -> io::Result<()> {
    let len = u32::try_from(frame.len())
        .ok()
        .filter(|len| *len as usize <= limit)
        .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, "frame too large"))?;
    io.write_all(&len.to_be_bytes()).await?;
    io.write_all(frame).await?;
    io.close().await
}

fn invalid(error: impl std::fmt::Display) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, error.to_string())
}

impl request_response::Codec for SyncCodec {
    type Protocol = StreamProtocol;
    type Request = SyncRequest;
    type Response = SyncResponse;

    async fn read_request<T>(&mut self, _: &StreamProtocol, io: &mut T) -> io::Result<SyncRequest>
    where
        T: AsyncRead + Unpin + Send,
    {
        let frame = read_frame(io, MAX_REQUEST_BYTES).await?;
        SyncRequest::decode(&frame).map_err(invalid)
    }

    async fn read_response<T>(&mut self, _: &StreamProtocol, io: &mut T) -> io::Result<SyncResponse>
    where
        T: AsyncRead + Unpin + Send,
    {
        let frame = read_frame(io, MAX_SYNC_BYTES).await?;
        SyncResponse::decode(&frame, &self.limits).map_err(invalid)
    }

    async fn write_request<T>(
        &mut self,
        _: &StreamProtocol,
        io: &mut T,
        request: SyncRequest,
    ) -> io::Result<()>
    where
        T: AsyncWrite + Unpin + Send,
    {
        write_frame(io, &request.encode(), MAX_REQUEST_BYTES).await
    }

    async fn write_response<T>(
        &mut self,
        _: &StreamProtocol,
        io: &mut T,
        response: SyncResponse,
    ) -> io::Result<()>
    where
        T: AsyncWrite + Unpin + Send,
    {
        write_frame(io, &response.encode(), MAX_SYNC_BYTES).await
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn frame(claimed: u32, body: &[u8]) -> futures::io::Cursor<Vec<u8>> {
        let mut bytes = claimed.to_be_bytes().to_vec();
        bytes.extend_from_slice(body);
        futures::io::Cursor::new(bytes)
    }

    #[test]
    fn a_claimed_length_is_a_limit_not_an_allocation() {
        futures::executor::block_on(async {
            // Over the request limit: refused before any byte of it is read.
            let over = u32::try_from(MAX_REQUEST_BYTES + 1).unwrap();
            let error = read_frame(&mut frame(over, b""), MAX_REQUEST_BYTES)
                .await
                .unwrap_err();
            assert_eq!(error.kind(), io::ErrorKind::InvalidData);
            // Within the limit but cut short: an error, after reading what came.
            let error = read_frame(&mut frame(200_000, &[1; 10]), MAX_REQUEST_BYTES)
                .await
                .unwrap_err();
            assert_eq!(error.kind(), io::ErrorKind::UnexpectedEof);
            assert!(error.to_string().contains("10 of 200000"), "{error}");
            // Whole: the bytes, exactly.
            let whole = read_frame(&mut frame(3, &[4, 5, 6, 7]), MAX_REQUEST_BYTES)
                .await
                .unwrap();
            assert_eq!(whole, [4, 5, 6]);
        });
    }
}
