"""The AWS side: boto3 implementations of the core's ports (S3, Step Functions, SNS, SageMaker
Experiments, the DynamoDB experiment lock) and AWS-only operations (experiment cleanup). Clients are
created once by the caller (a Lambda handler's ``get_deps`` or the CLI's AWS backend) and injected."""
