"""Import files and reports in the uploads bucket (S3)."""

from __future__ import annotations

from typing import Any, BinaryIO

from botocore.exceptions import ClientError

from sendline.errors import UploadMissing


class S3Uploads:
    def __init__(self, client: Any, bucket: str):
        self._s3 = client
        self.bucket = bucket

    def upload_url(self, key: str, content_type: str, expires_s: int) -> str:
        return self._s3.generate_presigned_url(
            "put_object", Params={"Bucket": self.bucket, "Key": key, "ContentType": content_type}, ExpiresIn=expires_s)

    def download_url(self, key: str, expires_s: int) -> str:
        return self._s3.generate_presigned_url("get_object", Params={"Bucket": self.bucket, "Key": key},
                                               ExpiresIn=expires_s)

    def put(self, key: str, body: bytes, content_type: str) -> None:
        self._s3.put_object(Bucket=self.bucket, Key=key, Body=body, ContentType=content_type)

    def put_file(self, key: str, file: BinaryIO, content_type: str) -> None:
        self._s3.upload_fileobj(file, self.bucket, key, ExtraArgs={"ContentType": content_type})

    def open(self, key: str) -> BinaryIO:
        """The object as a stream: read in pieces, never whole."""
        try:
            return self._s3.get_object(Bucket=self.bucket, Key=key)["Body"]
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") in ("NoSuchKey", "404"):
                raise UploadMissing(f"the uploaded file {key} is gone") from None
            raise

    def size(self, key: str) -> int:
        try:
            return int(self._s3.head_object(Bucket=self.bucket, Key=key)["ContentLength"])
        except ClientError:
            return 0

    def read(self, key: str) -> bytes:
        return self._s3.get_object(Bucket=self.bucket, Key=key)["Body"].read()
